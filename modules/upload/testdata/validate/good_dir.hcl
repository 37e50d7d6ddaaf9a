upload {
  source      = "files"
  destination = "/etc/app/"
  mode        = 644
}
