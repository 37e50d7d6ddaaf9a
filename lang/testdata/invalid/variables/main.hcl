variable "version" {
  type    = string
  default = "2.4" # ERROR: Invalid value for variable "version"
  validation {
    condition     = can(regex("^\\d+\\.\\d+\\.\\d+$", var.version))
    error_message = "version must look like 1.2.3"
  }
}

variable "count" {
  type    = number
  default = "many" # ERROR: Invalid value for variable "count"
}

variable "needed" { # ERROR: No value for required variable "needed"
  type = string
}

variable "typo" { # ERROR: No value for required variable "typo"
  type = strin # ERROR: Invalid type specification
}

variable "check_other" {
  default = "x"
  validation {
    condition     = local.y == "x" # ERROR: Invalid reference
    error_message = "no"
  }
}

variable "from_file" {
  type = number
}

host "h" {
  address = "198.51.100.1"
}

# No cascade: var.needed has no value (reported once, above).
database "d" {
  driver = "postgres"
  dsn    = var.needed
}

gate "g" {
  message = "started ${timestamp()}" # ERROR: Invalid message
}
