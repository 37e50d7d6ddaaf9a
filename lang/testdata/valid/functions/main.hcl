variable "version" {
  default = "2.4.0"
}

locals {
  rendered  = templatefile("app.conf.tmpl", { version = var.version, hosts = ["a", "b"] })
  content   = file("data.txt")
  digest    = filesha256("data.txt")
  home      = env("UPGRADER_TEST_HOME")
  missing   = env("UPGRADER_TEST_MISSING")
  joined    = join(",", [for s in split(".", var.version) : format("v%s", s)])
  upper     = upper(var.version)
  merged    = merge({ a = 1 }, { b = 2 })
  safe      = try(jsondecode("{"), "fallback")
  ok        = can(regex("^\\d", var.version))
  lengths   = [length("abc"), length([1, 2]), length({ a = 1 })]
  max       = max(3, 7, 5)
  when      = timestamp()
  json      = jsonencode({ version = var.version })
  replaced  = replace(var.version, ".", "_")
  coalesced = coalesce("", "x")
  keys      = keys({ b = 1, a = 2 })
  sha       = sha256("hello\n")
}

host "h" {
  address = "198.51.100.1"
}

variable "service" {
  type = object({
    name = string
    port = optional(number, 8080)
  })
  default = { name = "app" }
}
