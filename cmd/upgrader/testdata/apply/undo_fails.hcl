# step.b fails; step.a's rollback block fails too, every time.
step "a" {
  host            = host.web
  backup_required = false
  run {
    command = "mkdir -p /tmp/app && touch /tmp/app/a"
  }
  rollback {
    run {
      command = "echo tried >> /tmp/app/undo-tries && exit 7"
    }
  }
}

step "b" {
  host            = host.web
  backup_required = false
  depends_on      = [step.a]
  run {
    command = "exit 1"
  }
}
