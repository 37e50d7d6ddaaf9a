from_file = "x" # ERROR: Invalid value for variable "from_file"
undeclared = 1 # ERROR: Value for undeclared variable "undeclared"
