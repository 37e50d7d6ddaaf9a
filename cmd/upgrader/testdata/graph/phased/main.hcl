host "a" {
  address = "198.51.100.21"
}
host "b" {
  address = "198.51.100.22"
}

phase "prepare" {
  backup "a" {
    host  = host.a
    paths = ["/opt/app"]
  }
  backup "b" {
    host  = host.b
    paths = ["/opt/app"]
  }
}

phase "roll" {
  depends_on = [phase.prepare]
  on_failure = "stop"

  step "install" {
    hosts      = [host.a, host.b]
    batch_size = 1
    run {
      command = "install \"quoted\""
    }
  }
  check "smoke" {
    depends_on = [step.install]
    when       = step.install.changed
    http {
      url = "http://${host.a.address}/"
    }
  }
}

gate "done" {
  depends_on = [phase.roll]
  message    = "Finish?"
}
