variable "version" {
  type        = string
  description = "Release being rolled out"
  default     = "2.4.0"
  validation {
    condition     = can(regex("^\\d+\\.\\d+\\.\\d+$", var.version))
    error_message = "version must look like 1.2.3"
  }
}

variable "db_password" {
  type      = string
  sensitive = true
  default   = "s3cret"
}

variable "web_count" {
  type    = number
  default = 2
}

locals {
  artifact = "dist/app-${local.release}.tar.gz"
  release  = var.version
  dsn      = "postgres://app:${var.db_password}@203.0.113.5/app"
}

connection {
  user             = "deploy"
  private_key_file = "keys/id_ed25519"
  timeout          = "5s"
}

host "primary" {
  address = "198.51.100.11"
  labels  = { role = "primary" }
}

host "standby" {
  address = "198.51.100.12"
  labels  = { role = "standby" }
  connection {
    user = "ops"
    port = 2222
  }
}

database "prod" {
  driver = "postgres"
  dsn    = local.dsn
  host   = host.primary
}
