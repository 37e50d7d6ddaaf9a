gate "go" {
  message = "Go on?"
}
