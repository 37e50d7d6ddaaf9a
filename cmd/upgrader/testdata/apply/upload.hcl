step "conf" {
  host            = host.web
  backup_required = false
  upload {
    source      = "app-v2.conf"
    destination = "/tmp/app/app.conf"
  }
}
