package main

import (
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/backup"
	"github.com/upgrader-dev/upgrader/modules/commandcheck"
	"github.com/upgrader-dev/upgrader/modules/httpcheck"
	"github.com/upgrader-dev/upgrader/modules/migrate"
	"github.com/upgrader-dev/upgrader/modules/observe"
	"github.com/upgrader-dev/upgrader/modules/promcheck"
	"github.com/upgrader-dev/upgrader/modules/release"
	"github.com/upgrader-dev/upgrader/modules/run"
	"github.com/upgrader-dev/upgrader/modules/schemacheck"
	"github.com/upgrader-dev/upgrader/modules/sqlcheck"
	"github.com/upgrader-dev/upgrader/modules/template"
	"github.com/upgrader-dev/upgrader/modules/upload"
)

// newRegistry builds the module registry explicitly: every kind upgrader
// knows is listed here, once.
func newRegistry() *modules.Registry {
	r := modules.NewRegistry()
	r.RegisterNode(observe.New())
	r.RegisterNode(&backup.Backup{Version: version})
	r.RegisterAction(&backup.Restore{})
	r.RegisterAction(&upload.Upload{})
	r.RegisterAction(&template.Template{})
	r.RegisterAction(&release.Release{})
	r.RegisterAction(&run.Run{})
	r.RegisterProbe(&httpcheck.HTTP{})
	r.RegisterProbe(&commandcheck.Command{})
	r.RegisterNode(schemacheck.New())
	r.RegisterNode(migrate.New())
	r.RegisterProbe(sqlcheck.New())
	r.RegisterProbe(promcheck.New())
	return r
}
