host "x" {
address="198.51.100.1"
  labels = {a=1,bb=2}
}
