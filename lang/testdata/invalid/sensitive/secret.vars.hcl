token = "hunter2-secret-token"
