host "web" {
  address = "198.51.100.1"
}

phase "a" {
  depends_on = [phase.b] # ERROR: Cycle in phase order
}

phase "b" {
  depends_on = [phase.a] # ERROR: Cycle in phase order
  on_failure = "ignore" # ERROR: Invalid on_failure
  escalate {
    checks   = [check.regresion] # ERROR: Reference to undeclared check "regresion"
    rollback = "phase" # ERROR: Invalid rollback
  }
  check "regression" {
    http {
      url = "http://198.51.100.1/"
    }
  }
}

phase "c" {
  depends_on = [step.x] # ERROR: Invalid depends_on
  gate "g" {
    depends_on = [phase.c] # ERROR: Invalid depends_on
  }
}
