upload {
  source      = "files/missing.conf" # ERROR: Source not found
  destination = "etc/app/app.conf"   # ERROR: Relative destination path
  mode        = "rw-r--r--"          # ERROR: Invalid mode
  owner       = "app"                # ERROR: Changing owner needs sudo
}
