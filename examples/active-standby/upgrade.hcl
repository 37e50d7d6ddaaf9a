# The reference procedure (SPEC section 1), as upgrader runs it.
#
#   host primary   serves production (v1), upgraded last
#   host standby   upgraded first, then serves production while being watched
#   host test      the test environment: where the release passed its tests
#   host lb        nginx; "switching the cluster" = rewrite its upstream, reload
#   host db        PostgreSQL: databases prod and test
#
# Hosts and connection settings are in hosts.hcl (see README.md).

locals {
  # Where the service lives on its hosts: adapt these to yours.
  app_dir     = "/opt/app"                  # releases/VERSION and the `current` link
  config_file = "/etc/app/app.conf"         # rendered from templates/app.conf.tmpl
  app_paths   = [local.app_dir, "/etc/app"] # programs and data backed up before each change
  log_file    = "/var/log/app/app.log"      # watched for error lines while observing
  restart     = "${local.app_dir}/current/bin/start restart"
  app_binary  = "${local.app_dir}/current/bin/app"

  # The load balancer's upstream file and its graceful reload. The switch
  # notes nginx's workers, reloads, then waits until every one of those old
  # workers has finished its requests and exited (until then one may still
  # accept a connection for the old upstream) and a request reaches the new
  # upstream. format(local.switch, ADDRESS).
  upstream_file = "/etc/app/upstream.conf"
  switch        = "old=$(ps --ppid \"$(cat /opt/nginx/nginx.pid)\" -o pid=) && nginx -c /etc/app/nginx.conf -t -q && nginx -c /etc/app/nginx.conf -s reload && for i in $(seq 300); do gone=1; for p in $old; do ! kill -0 \"$p\" 2>/dev/null || gone=; done; [ -n \"$gone\" ] && curl -s -o /dev/null -D - http://127.0.0.1:${var.lb_port}/health | grep -qi '^x-upstream: %s:${var.app_port}' && exit 0; sleep 0.1; done; echo 'lb does not reach %[1]s yet' >&2; exit 1"

  artifact         = var.artifact != "" ? var.artifact : "dist/app-${var.version}.tar.gz"

  # The share of one host's requests answered with a 5xx (format with the
  # host's ADDRESS:PORT). "or vector(0)": no 5xx series yet means none;
  # clamp_min: an idle host (rate 0) has a ratio of 0, not NaN. A host that
  # is not scraped at all gives no data: on_no_data decides.
  error_ratio = "(sum(rate(app_http_requests_total{instance=\"%[1]s\",code=~\"5..\"}[${var.rate_window}])) or vector(0)) / clamp_min(sum(rate(app_http_requests_total{instance=\"%[1]s\"}[${var.rate_window}])), 1e-9)"
  current_artifact = "dist/app-${var.current_version}.tar.gz"
}

# What users feel: the app's request counters, scraped by Prometheus.
metric_source "prom" {
  prometheus {
    url     = var.prometheus_url
    timeout = "5s"
  }
}

database "prod" {
  driver = "postgres"
  dsn    = var.prod_dsn
  host   = host.db # pg_dump runs there
}

database "test" {
  driver = "postgres"
  dsn    = var.test_dsn
  host   = host.db
}

# ---------------------------------------------------------------------------
# 1. Verify in the test environment that the release passed its regression tests.

phase "verify" {
  on_failure = "stop" # nothing has changed yet

  check "release_tested" {
    retries  = var.check_retries
    interval = var.check_interval
    command {
      host          = host.test
      command       = "${local.app_binary} -version"
      expect_output = var.version
    }
    http {
      url           = "http://${host.test.address}:${var.app_port}/api/ping"
      expect_status = 200
      expect_body   = "pong"
    }
    http {
      url           = "http://${host.test.address}:${var.app_port}/items"
      expect_status = 200
    }
    http { # the write flow
      url           = "http://${host.test.address}:${var.app_port}/items"
      method        = "POST"
      headers       = { "Content-Type" = "application/x-www-form-urlencoded" }
      body          = "name=release-check-${run.id}"
      expect_status = 201
    }
    http {
      url           = "http://${host.test.address}:${var.app_port}/admin"
      expect_status = 200
      expect_body   = "app admin"
    }
  }
}

# ---------------------------------------------------------------------------
# 2. Back up all data and programs of both production servers.

phase "backup" {
  depends_on = [phase.verify]

  backup "primary" {
    host    = host.primary
    paths   = local.app_paths
    exclude = ["*.pid"]
  }

  backup "standby" {
    host    = host.standby
    paths   = local.app_paths
    exclude = ["*.pid"]
  }

  backup "prod_db" {
    database = database.prod
  }
}

# ---------------------------------------------------------------------------
# 3. Compare the production schema with the test schema.
# 3.1 If they differ: back up the test environment, put the production
#     programs on it, run the basic flows; production is migrated (first node
#     of phase "standby") only if they pass. If not, the run stops here.
# 3.2 If they match, the 3.1 nodes are skipped.

phase "schema" {
  depends_on = [phase.backup]

  schema_check "prod_vs_test" {
    database    = database.prod
    reference   = database.test
    on_mismatch = "continue"
  }

  backup "test_env" {
    when    = !schema_check.prod_vs_test.matches
    host    = host.test
    paths   = local.app_paths
    exclude = ["*.pid"]
  }

  backup "test_db" {
    when     = !schema_check.prod_vs_test.matches
    database = database.test
  }

  step "compat_install" {
    when       = !schema_check.prod_vs_test.matches
    depends_on = [backup.test_env, backup.test_db]
    host       = host.test
    release {
      artifact = local.current_artifact
      dir      = local.app_dir
      version  = var.current_version
      activate = local.restart
    }
    rollback {
      restore {
        backup = backup.test_env
      }
      run {
        command = local.restart
      }
    }
  }

  check "compat_flows" {
    when       = !schema_check.prod_vs_test.matches
    depends_on = [step.compat_install]
    retries    = var.check_retries
    interval   = var.check_interval
    http {
      url         = "http://${host.test.address}:${var.app_port}/version"
      expect_body = var.current_version
    }
    http {
      url           = "http://${host.test.address}:${var.app_port}/api/ping"
      expect_status = 200
      expect_body   = "pong"
    }
    http {
      url           = "http://${host.test.address}:${var.app_port}/items"
      expect_status = 200
    }
    http { # the production program must still be able to write
      url           = "http://${host.test.address}:${var.app_port}/items"
      method        = "POST"
      headers       = { "Content-Type" = "application/x-www-form-urlencoded" }
      body          = "name=compat-check-${run.id}"
      expect_status = 201
    }
    http {
      url           = "http://${host.test.address}:${var.app_port}/admin"
      expect_status = 200
    }
  }

  # The test environment goes back to what it ran before the compatibility run.
  step "compat_restore" {
    when       = !schema_check.prod_vs_test.matches
    depends_on = [check.compat_flows]
    host       = host.test
    restore {
      backup = backup.test_env
    }
    run {
      command = local.restart
    }
  }
}

# ---------------------------------------------------------------------------
# 3.1 (migrate production), 4-8: the standby takes the new version and the
# traffic. Any failure here (7.1, 8.1) undoes this phase newest first: traffic
# back to the primary at once, then the standby restored, then the migration
# undone. The primary is not touched in this phase.

phase "standby" {
  depends_on = [phase.schema]
  on_failure = "rollback"

  migrate "prod" {
    when     = !schema_check.prod_vs_test.matches
    database = database.prod
    dir      = "migrations"
  }

  # 4. Upgrade the program on the standby.
  step "upgrade_standby" {
    depends_on = [migrate.prod]
    host       = host.standby
    template {
      source      = "templates/app.conf.tmpl"
      destination = local.config_file
      vars        = { version = var.version, port = var.app_port, dsn = var.prod_dsn }
    }
    release {
      artifact = local.artifact
      dir      = local.app_dir
      version  = var.version
      keep     = 3
      activate = local.restart
    }
    rollback {
      restore {
        backup = backup.standby
      }
      run {
        command = local.restart
      }
    }
  }

  # 5. Check configuration and program version on the standby.
  check "standby_ready" {
    depends_on = [step.upgrade_standby]
    retries    = var.check_retries
    interval   = var.check_interval
    command {
      host          = host.standby
      command       = "${local.app_binary} -check"
      expect_output = "config ok: version ${var.version}"
    }
    http {
      url         = "http://${host.standby.address}:${var.app_port}/version"
      expect_body = var.version
    }
  }

  backup "lb_before_switch" {
    host  = host.lb
    paths = ["/etc/app"]
  }

  # 6. Switch production traffic to the standby.
  step "switch_to_standby" {
    depends_on = [check.standby_ready, backup.lb_before_switch]
    host       = host.lb
    template {
      source      = "templates/upstream.conf.tmpl"
      destination = local.upstream_file
      vars        = { backend = host.standby.address, port = var.app_port, role = "standby" }
    }
    run {
      command = format(local.switch, host.standby.address)
      sudo    = true
    }
    # 7.1: switch back to the primary at once.
    rollback {
      template {
        source      = "templates/upstream.conf.tmpl"
        destination = local.upstream_file
        vars        = { backend = host.primary.address, port = var.app_port, role = "primary" }
      }
      run {
        command = format(local.switch, host.primary.address)
        sudo    = true
      }
    }
  }

  # 7. Regression checks against production, through the load balancer.
  check "regression" {
    depends_on = [step.switch_to_standby]
    retries    = var.check_retries
    interval   = var.check_interval
    http { # API
      url           = "http://${host.lb.address}:${var.lb_port}/api/ping"
      expect_status = 200
      expect_body   = "pong"
    }
    http { # web service
      url           = "http://${host.lb.address}:${var.lb_port}/version"
      expect_status = 200
      expect_body   = var.version
    }
    http {
      url           = "http://${host.lb.address}:${var.lb_port}/items"
      expect_status = 200
    }
    http { # admin UI
      url           = "http://${host.lb.address}:${var.lb_port}/admin"
      expect_status = 200
      expect_body   = "app admin"
    }
  }

  # 8. Observe: CPU, memory, error lines, the regression checks again, and
  # what users feel: the share of the standby's requests that fail.
  observe "standby" {
    depends_on         = [check.regression]
    duration           = var.standby_observation
    interval           = var.observe_interval
    hosts              = [host.standby]
    max_cpu_percent    = var.max_cpu_percent
    max_memory_percent = var.max_memory_percent
    breach_for         = var.breach_for
    log {
      path        = local.log_file
      pattern     = "ERROR|panic:"
      max_matches = 0
    }
    metric "error_ratio" {
      source     = metric_source.prom
      query      = format(local.error_ratio, "${host.standby.address}:${var.app_port}")
      max        = var.max_error_ratio
      on_no_data = "inconclusive" # Prometheus down or the host not scraped: a breach after breach_for
    }
    checks = [check.regression]
  }
}

# ---------------------------------------------------------------------------
# 9. Upgrade the primary, switch back to it, run the regression checks.
# 10. Observe. If the primary misbehaves, this phase is undone (traffic to the
#     standby, primary restored); if the standby then fails its health check
#     too, the problem is the release: everything is rolled back.

phase "primary" {
  depends_on = [phase.standby]
  on_failure = "rollback"
  escalate {
    checks   = [check.standby_healthy]
    rollback = "all"
  }

  # The standby is the fallback of this phase: it must be healthy now, and
  # escalate asks again after a rollback of this phase.
  check "standby_healthy" {
    retries  = var.check_retries
    interval = var.check_interval
    http {
      url           = "http://${host.standby.address}:${var.app_port}/api/ping"
      expect_status = 200
      expect_body   = "pong"
    }
    command { # no ERROR line in the last 30 seconds of its log
      host    = host.standby
      command = "! awk -v since=\"$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%S)\" '$1 >= since && $2 == \"ERROR\"' ${local.log_file} | grep ."
    }
  }

  backup "primary_before_upgrade" {
    host    = host.primary
    paths   = local.app_paths
    exclude = ["*.pid"]
  }

  step "upgrade_primary" {
    depends_on = [check.standby_healthy, backup.primary_before_upgrade]
    host       = host.primary
    template {
      source      = "templates/app.conf.tmpl"
      destination = local.config_file
      vars        = { version = var.version, port = var.app_port, dsn = var.prod_dsn }
    }
    release {
      artifact = local.artifact
      dir      = local.app_dir
      version  = var.version
      keep     = 3
      activate = local.restart
    }
    rollback {
      restore {
        backup = backup.primary_before_upgrade
      }
      run {
        command = local.restart
      }
    }
  }

  check "primary_ready" {
    depends_on = [step.upgrade_primary]
    retries    = var.check_retries
    interval   = var.check_interval
    command {
      host          = host.primary
      command       = "${local.app_binary} -check"
      expect_output = "config ok: version ${var.version}"
    }
    http {
      url         = "http://${host.primary.address}:${var.app_port}/version"
      expect_body = var.version
    }
  }

  backup "lb_before_switch_back" {
    host  = host.lb
    paths = ["/etc/app"]
  }

  step "switch_to_primary" {
    depends_on = [check.primary_ready, backup.lb_before_switch_back]
    host       = host.lb
    template {
      source      = "templates/upstream.conf.tmpl"
      destination = local.upstream_file
      vars        = { backend = host.primary.address, port = var.app_port, role = "primary" }
    }
    run {
      command = format(local.switch, host.primary.address)
      sudo    = true
    }
    # 10.1: the primary misbehaves -> traffic to the standby.
    rollback {
      template {
        source      = "templates/upstream.conf.tmpl"
        destination = local.upstream_file
        vars        = { backend = host.standby.address, port = var.app_port, role = "standby" }
      }
      run {
        command = format(local.switch, host.standby.address)
        sudo    = true
      }
    }
  }

  check "regression_primary" {
    depends_on = [step.switch_to_primary]
    retries    = var.check_retries
    interval   = var.check_interval
    http {
      url           = "http://${host.lb.address}:${var.lb_port}/api/ping"
      expect_status = 200
      expect_body   = "pong"
    }
    http {
      url           = "http://${host.lb.address}:${var.lb_port}/version"
      expect_status = 200
      expect_body   = var.version
    }
    http {
      url           = "http://${host.lb.address}:${var.lb_port}/items"
      expect_status = 200
    }
    http {
      url           = "http://${host.lb.address}:${var.lb_port}/admin"
      expect_status = 200
      expect_body   = "app admin"
    }
  }

  observe "primary" {
    depends_on         = [check.regression_primary]
    duration           = var.primary_observation
    interval           = var.observe_interval
    hosts              = [host.primary]
    max_cpu_percent    = var.max_cpu_percent
    max_memory_percent = var.max_memory_percent
    breach_for         = var.breach_for
    log {
      path        = local.log_file
      pattern     = "ERROR|panic:"
      max_matches = 0
    }
    metric "error_ratio" {
      source     = metric_source.prom
      query      = format(local.error_ratio, "${host.primary.address}:${var.app_port}")
      max        = var.max_error_ratio
      on_no_data = "inconclusive"
    }
    checks = [check.regression_primary]
  }
}
