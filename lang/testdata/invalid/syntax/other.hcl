# Not reported: syntax errors come first.
host "x" {
  address = var.nope
}
