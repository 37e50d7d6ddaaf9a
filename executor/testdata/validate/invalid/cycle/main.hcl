host "web" {
  address = "198.51.100.10"
}

check "a" {
  depends_on = [step.b] # ERROR: Dependency cycle
  http {
    url = "http://198.51.100.10/"
  }
}

step "b" {
  host            = host.web
  backup_required = false
  run {
    command = "echo ${gate.c.approved_by}" # ERROR: Dependency cycle
  }
}

gate "c" {
  depends_on = [check.a] # ERROR: Dependency cycle
}

step "self" {
  host            = host.web
  backup_required = false
  run {
    command = "echo ${step.self.changed}" # ERROR: Dependency cycle
  }
}

phase "one" {
  depends_on = [phase.two] # ERROR: Dependency cycle
  gate "one" {
  }
}

phase "two" {
  gate "two" {
    depends_on = [gate.one] # ERROR: Dependency cycle
  }
}
