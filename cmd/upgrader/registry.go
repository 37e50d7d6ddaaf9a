package main

import (
	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/backup"
	"github.com/upgrader-dev/upgrader/modules/observe"
)

// newRegistry builds the module registry explicitly: every kind upgrader
// knows is listed here, once.
func newRegistry() *modules.Registry {
	r := modules.NewRegistry()
	r.RegisterNode(observe.New())
	r.RegisterNode(&backup.Backup{Version: version})
	r.RegisterAction(&backup.Restore{})
	return r
}
