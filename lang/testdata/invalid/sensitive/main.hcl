variable "password" {
  type      = string
  sensitive = true
  default   = "hunter2-secret"
  validation {
    condition     = length(var.password) > 20 # ERROR: Invalid value for variable "password"
    error_message = "too short: ${var.api_key}"
  }
}

variable "token" { # ERROR: Invalid value for variable "token"
  type      = number
  sensitive = true
}

variable "api_key" {
  type      = string
  sensitive = true
  default   = "hunter2-api-key"
}

host "h" {
  address = "198.51.100.1"
}

check "c" {
  http {
    url           = "http://198.51.100.1/${var.api_key}"
    expect_status = var.api_key # ERROR: Incorrect attribute value type
    expect_body   = jsondecode(var.api_key) # ERROR: Error in function call
  }
}

variable "internal_ip" {
  sensitive = true
  default   = "198.51.100.99"
}

host "hidden" {
  address = var.internal_ip # ERROR: Sensitive value not allowed
}

gate "g" {
  message = "key is ${var.api_key}" # ERROR: Sensitive value not allowed
}

database "db" {
  driver = "postgres"
  dsn    = "postgres://app:${var.api_key}@198.51.100.5/app"
}
