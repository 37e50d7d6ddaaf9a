# Inputs of the active/standby upgrade. Defaults are production's; the tests
# shrink the observation windows to seconds with -var.

variable "version" {
  type        = string
  description = "The release being rolled out"
  default     = "2.0.0"
  validation {
    condition     = can(regex("^\\d+\\.\\d+\\.\\d+$", var.version))
    error_message = "version must look like 1.2.3"
  }
}

variable "current_version" {
  type        = string
  description = "What production runs now: the programs put on the test environment in step 3.1"
  default     = "1.0.0"
}

variable "artifact" {
  type        = string
  description = "The release tarball; empty: dist/app-VERSION.tar.gz (built by ./build.sh)"
  default     = ""
}

variable "prod_dsn" {
  type        = string
  description = "Production PostgreSQL, as upgrader and the app reach it"
  sensitive   = true
}

variable "test_dsn" {
  type        = string
  description = "Test-environment PostgreSQL"
  sensitive   = true
}

variable "app_port" {
  type    = number
  default = 8080
}

variable "lb_port" {
  type    = number
  default = 80
}

variable "standby_observation" {
  type        = string
  description = "Step 8: how long the standby serves production before the primary is upgraded"
  default     = "72h"
}

variable "primary_observation" {
  type        = string
  description = "Step 10: how long the upgraded primary is watched"
  default     = "48h"
}

variable "observe_interval" {
  type    = string
  default = "1m"
}

variable "breach_for" {
  type        = string
  description = "How long CPU or memory must stay above its bound to count"
  default     = "5m"
}

variable "max_cpu_percent" {
  type    = number
  default = 85
}

variable "max_memory_percent" {
  type    = number
  default = 90
}

variable "check_retries" {
  type    = number
  default = 5
}

variable "check_interval" {
  type    = string
  default = "3s"
}

variable "prometheus_url" {
  type        = string
  description = "The Prometheus server that scrapes the app's /metrics on primary and standby (job with instance = ADDRESS:app_port)"
}

variable "rate_window" {
  type        = string
  description = "The range of rate() in the error-ratio queries"
  default     = "2m"
}

variable "max_error_ratio" {
  type        = number
  description = "Steps 8 and 10: the share of requests a host may answer with a 5xx"
  default     = 0.01
}
