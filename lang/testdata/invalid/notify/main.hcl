notify "a" {
  webhook {
    url    = "ftp://example.invalid/x" # ERROR: Invalid url
    format = "teams" # ERROR: Invalid format
  }
  on = ["run_finshed"] # ERROR: Unknown event
}

notify "b" { # ERROR: Notify without a webhook
  digest = "10s" # ERROR: Invalid digest
}

notify "c" {
  webhook {
    url     = "https://example.invalid/hook"
    headers = "Authorization: x" # ERROR: Invalid headers
    timeout = "1h" # ERROR: Invalid timeout
  }
}
