upload {
  source      = "files/app.conf"
  destination = ["/etc/app/app.conf"] # ERROR: Incorrect attribute value type
}
