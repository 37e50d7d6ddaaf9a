host "x" {
  address = "198.51.100.1"
}
