gate "go" {
  message   = "Change board: go?"
  approvers = ["bob"]
}
