variable "names" {
  type    = list(string)
  default = ["a", "b"]
}

host "web" {
  for_each = { "web-1" = "198.51.100.1", "web-2" = "198.51.100.2" }
  address  = each.value
}

host "listed" {
  for_each = var.names # ERROR: Invalid for_each
  address  = each.value
}

host "numbers" {
  for_each = 42 # ERROR: Invalid for_each
  address  = "198.51.100.9"
}

host "web-1" { # ERROR: Duplicate host "web-1"
  address = "198.51.100.3"
}

host "clash" {
  for_each = toset(["web-2"]) # ERROR: Duplicate host "web-2"
  address  = "198.51.100.4"
}

host "plain" {
  address = each.value # ERROR: Invalid reference
}

host "spaced" {
  for_each = toset(["a b"]) # ERROR: Invalid for_each
  address  = "198.51.100.5"
}
