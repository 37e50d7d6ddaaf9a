# Six chained steps on two real hosts; the 4th fails. Each rollback block
# appends to /tmp/app/undo, so the file shows the order of the undos.
phase "upgrade" {
  step "s1" {
    hosts           = [host.web, host.db]
    backup_required = false
    run {
      command = "mkdir -p /tmp/app && touch /tmp/app/s1"
    }
    rollback {
      run {
        command = "echo \"undo-1 app.conf=$(cat /tmp/app/app.conf)\" >> /tmp/app/undo && rm -f /tmp/app/s1"
      }
    }
  }
  step "s2" {
    hosts           = [host.web, host.db]
    backup_required = false
    depends_on      = [step.s1]
    # no rollback block: upload's own undo puts the previous content back
    upload {
      source      = "app-v2.conf"
      destination = "/tmp/app/app.conf"
    }
  }
  step "s3" {
    hosts           = [host.web, host.db]
    backup_required = false
    depends_on      = [step.s2]
    run {
      command = "touch /tmp/app/s3"
    }
    rollback {
      run {
        command = "echo undo-3 >> /tmp/app/undo && rm -f /tmp/app/s3"
      }
    }
  }
  step "s4" {
    hosts           = [host.web, host.db]
    batch_size      = 1
    backup_required = false
    depends_on      = [step.s3]
    run {
      command = "touch /tmp/app/s4 && exit 3"
    }
    rollback {
      run {
        command = "echo undo-4 >> /tmp/app/undo && rm -f /tmp/app/s4"
      }
    }
  }
  step "s5" {
    hosts           = [host.web, host.db]
    backup_required = false
    depends_on      = [step.s4]
    run {
      command = "touch /tmp/app/s5"
    }
  }
  step "s6" {
    hosts           = [host.web, host.db]
    backup_required = false
    depends_on      = [step.s5]
    run {
      command = "touch /tmp/app/s6"
    }
  }
}
