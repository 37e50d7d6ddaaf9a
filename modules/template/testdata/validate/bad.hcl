template {
  source      = "missing.tmpl" # ERROR: Template not found
  destination = "app.conf"     # ERROR: Relative destination path
  mode        = "0999"         # ERROR: Invalid mode
}
