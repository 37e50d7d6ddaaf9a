variable "version" {
  default = "1.0.0"
}

locals {
  artifact = "app-${var.verison}.tgz" # ERROR: Reference to undeclared variable "verison"
  good     = "x"
}

host "standby" {
  address = "198.51.100.1"
}

database "prod" {
  driver = "postgres"
  dsn    = "postgres://203.0.113.1/app"
  host   = host.stanby # ERROR: Reference to undeclared host "stanby"
}

backup "standby" {
  host = host.standby
}

step "install" {
  host       = host.standbi # ERROR: Reference to undeclared host "standbi"
  depends_on = [backup.standbyy, phase.nope] # ERROR: Reference to undeclared backup "standbyy" # ERROR: Reference to undeclared phase "nope"
  when       = schema_check.prod.matches # ERROR: Reference to undeclared schema_check "prod"

  upload {
    source      = local.artfact # ERROR: Reference to undeclared local value "artfact"
    destination = "/tmp/${hots.standby.name}" # ERROR: Unknown variable
  }
  run {
    command = "echo ${database.prd.name} ${run.nme}" # ERROR: Reference to undeclared database "prd" # ERROR: Unsupported attribute
  }
}

check "c" {
  depends_on = [step.install.changed] # ERROR: Invalid depends_on
  http {
    url = "http://${host.standby.adress}/" # ERROR: Unsupported attribute
  }
}

gate "g" {
  depends_on = [chek.c] # ERROR: Invalid depends_on
  message    = "go ${phase.x.name}?" # ERROR: Invalid reference to a phase
}

backup "db" {
  database   = database.prod
  depends_on = [step.instal] # ERROR: Reference to undeclared step "instal"
  when       = var.nope # ERROR: Reference to undeclared variable "nope"
}
