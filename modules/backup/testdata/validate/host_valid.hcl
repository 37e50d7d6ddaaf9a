backup {
  host      = host.web
  paths     = ["/opt/app", "/etc/app/", "/var/lib/my app"]
  exclude   = ["*.tmp", "/opt/app/cache", "logs/*"]
  sudo      = true
  keep_runs = 3
  timeout   = "2h"
}
