# Example hosts (documentation addresses). testenv (and scripts/example.sh)
# replace this file with the test hosts' addresses in its copy of the example;
# for your own machines, put yours here. Keep the names: upgrade.hcl uses them.

connection {
  user             = "deploy"             # the account that owns the service's files
  private_key_file = "~/.ssh/id_ed25519"  # and/or agent = true
  known_hosts_file = "~/.ssh/known_hosts" # unknown or changed host keys are refused
  timeout          = "10s"
  # bastion        = "deploy@jump.example.com:22"
}

host "primary" { # serves production now; upgraded last
  address = "198.51.100.11"
}

host "standby" { # upgraded first, then serves production while watched
  address = "198.51.100.12"
}

host "test" { # the test environment where the release passed its tests
  address = "198.51.100.13"
}

host "lb" { # nginx in front of primary and standby
  address = "198.51.100.10"
}

host "db" { # where pg_dump runs for the database backups
  address = "198.51.100.20"
}
