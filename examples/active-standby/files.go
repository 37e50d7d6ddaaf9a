// Package activestandby holds the reference procedure's configuration files,
// embedded so that `upgrader init` writes exactly the procedure the
// end-to-end tests run: there is one copy of it, here.
package activestandby

import "embed"

// Files are the procedure's files, by their paths in this directory.
//
//go:embed upgrade.hcl variables.hcl templates/*.tmpl migrations/*.sql
var Files embed.FS
