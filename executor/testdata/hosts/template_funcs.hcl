# A template calling functions of the language's table, beyond template's
# own small set (sort, title, indent, base64encode, formatlist, max).
step "conf" {
  host            = host.web
  backup_required = false
  template {
    source      = "funcs.conf.tmpl"
    destination = "/tmp/app/app.conf"
    vars = {
      name    = "app"
      servers = ["b.example", "a.example"]
      port    = 80
    }
  }
}
