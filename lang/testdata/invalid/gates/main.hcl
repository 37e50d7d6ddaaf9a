gate "a" {
  timeout = "soon" # ERROR: Invalid timeout
}

gate "b" {
  on_timeout = "ignore" # ERROR: Invalid on_timeout
}

gate "c" {
  timeout    = "8h"
  on_timeout = "approve"
  approvers  = [] # ERROR: Invalid approvers
}

gate "d" {
  approvers = ["alice", "alice"] # ERROR: Invalid approvers
}

gate "e" {
  approvers = "alice" # ERROR: Invalid approvers
}

gate "f" {
  on_timeout = "approve" # ERROR: on_timeout without timeout
}
