variable "token" {
  default   = "t0ken-value"
  sensitive = true
}

metric_source "prom" {
  prometheus {
    url     = "http://127.0.0.1:9090"
    headers = { Authorization = "Bearer ${var.token}" }
    timeout = "5s"
  }
}

metric_source "prom" { # ERROR: Duplicate metric_source "prom"
  prometheus {
    url = "http://127.0.0.1:9091"
  }
}

metric_source "empty" { # ERROR: Missing source kind
}

metric_source "two" {
  prometheus {
    url = "http://a:9090"
  }
  prometheus { # ERROR: Duplicate source kind
    url = "http://b:9090"
  }
}

metric_source "noscheme" {
  prometheus {
    url = "prometheus:9090" # ERROR: Invalid url
  }
}

metric_source "api" {
  prometheus {
    url = "http://prometheus:9090/api/v1/query" # ERROR: Invalid url
  }
}

metric_source "badtimeout" {
  prometheus {
    url     = "http://prometheus:9090"
    timeout = "soon" # ERROR: Invalid timeout
  }
}

metric_source "typo" {
  prometheus {
    url    = "http://prometheus:9090"
    header = {} # ERROR: Unsupported argument
  }
}

metric_source "kind" {
  graphite { # ERROR: Unsupported block type
  }
}

observe "x" {
  duration = "1m"
  checks   = [metric_source.promm] # ERROR: Reference to undeclared metric source "promm"
}
