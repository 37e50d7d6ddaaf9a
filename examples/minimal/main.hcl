# The smallest useful upgrade: back up one host, restart its service,
# check that it answers. Validate it with: upgrader validate examples/minimal

variable "version" {
  type        = string
  description = "Release being rolled out"
  default     = "1.0.0"
  validation {
    condition     = can(regex("^\\d+\\.\\d+\\.\\d+$", var.version))
    error_message = "version must look like 1.2.3"
  }
}

connection {
  user = "deploy"
}

host "web" {
  address = "198.51.100.10"
  labels  = { role = "web" }
}

backup "web" {
  host  = host.web
  paths = ["/opt/app", "/etc/app"]
}

step "restart" {
  host       = host.web
  depends_on = [backup.web]

  run {
    command = "echo ${shellquote(var.version)} > /etc/app/version && systemctl restart app"
  }

  rollback {
    restore {
      backup = backup.web
    }
  }
}

check "health" {
  depends_on = [step.restart]
  retries    = 3
  interval   = "2s"

  http {
    url           = "http://${host.web.address}:8080/health"
    expect_status = 200
  }
}
