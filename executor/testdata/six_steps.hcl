host "web" {
  address = "198.51.100.10"
}

phase "main" {
  step "s1" {
    host            = host.web
    backup_required = false
    mark { text = "1" }
  }
  step "s2" {
    host            = host.web
    backup_required = false
    depends_on      = [step.s1]
    mark { text = "2" }
  }
  step "s3" {
    host            = host.web
    backup_required = false
    depends_on      = [step.s2]
    mark { text = "3a" }
    mark { text = "3b" }
  }
  step "s4" {
    host            = host.web
    backup_required = false
    depends_on      = [step.s3]
    mark { text = "4a" }
    mark {
      text = "4b"
      fail = var.fail
    }
  }
  step "s5" {
    host            = host.web
    backup_required = false
    depends_on      = [step.s4]
    mark { text = "5" }
  }
  step "s6" {
    host            = host.web
    backup_required = false
    depends_on      = [step.s5]
    mark { text = "6" }
  }
}

variable "fail" {
  type    = bool
  default = true
}
