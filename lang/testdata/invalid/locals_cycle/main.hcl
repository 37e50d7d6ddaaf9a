locals {
  a    = local.b # ERROR: Cycle in local values
  b    = "${local.c}-x" # ERROR: Cycle in local values
  c    = upper(local.a) # ERROR: Cycle in local values
  self = local.self # ERROR: Cycle in local values
  ok   = "fine"
  uses = local.a
  host = host.web.address # ERROR: Invalid reference in a local value
}

host "web" {
  address = local.ok
}
