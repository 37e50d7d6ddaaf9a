package main

import (
	"github.com/upgrader-dev/upgrader/modules"
)

// newRegistry builds the module registry explicitly: every kind upgrader
// knows is listed here, once.
func newRegistry() *modules.Registry {
	r := modules.NewRegistry()
	return r
}
