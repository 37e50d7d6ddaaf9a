# Everything plan probes: file hashes (upload), guards (creates, unless).
step "conf" {
  hosts           = [host.web, host.db]
  backup_required = false
  upload {
    source      = "app-v2.conf"
    destination = "/tmp/app/app.conf"
  }
  run {
    command = "touch /tmp/app/ran"
    creates = "/tmp/app/ran"
  }
  run {
    command = "touch /tmp/app/ran2"
    unless  = "test -f /tmp/app/app.conf"
  }
}
