# Values known only at apply time are not judged at validate time.
observe "later" {
  duration = var.later
  hosts    = [host.standby]
  log {
    path    = "/var/log/app/app.log"
    pattern = var.later
  }
}
