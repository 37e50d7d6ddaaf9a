package lang

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// State is the configuration's `state` block: where runs are kept
// (docs/SPEC.md "Shared state"). Nil when there is none: the local state
// directory.
type State struct {
	Backend string // "local" or "postgres"
	// DSN may be sensitive: never print it. From the block, else
	// UPGRADER_STATE_DSN.
	DSN         string
	Schema      string        // default "upgrader"
	Name        string        // the workspace
	Lease       time.Duration // default 60s
	BackupStore string        // not supported yet: Load refuses it
	DeclRange   hcl.Range
}

var stateSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "backend"}, {Name: "dsn"}, {Name: "schema"}, {Name: "name"}, {Name: "lease"}, {Name: "backup_store"}},
}

var (
	stateSchemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	stateNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
)

func (l *loader) decodeState() {
	if len(l.stateBlocks) == 0 {
		return
	}
	l.inStatic = true
	defer func() { l.inStatic = false }()
	for _, b := range l.stateBlocks[1:] {
		l.errorf(b.DefRange, "Duplicate state block", "A configuration has one state block; the first is at %s.", firstAt(l.stateBlocks[0].DefRange))
	}
	b := l.stateBlocks[0]
	st := &State{Backend: "local", Schema: "upgrader", Lease: 60 * time.Second, DeclRange: b.DefRange}
	l.cfg.State = st
	ctx := l.staticCtx()
	content := l.content(b.Body, stateSchema, "a state block")
	attr := func(name string) (*hcl.Attribute, bool) { a, ok := content.Attributes[name]; return a, ok }
	if a, ok := attr("backend"); ok {
		if s, ok := l.evalString(a, ctx, "backend"); ok {
			switch s {
			case "local", "postgres":
				st.Backend = s
			default:
				detail := fmt.Sprintf("backend is \"local\" (the state directory) or \"postgres\", not %q.", s)
				if s == "postgresql" || s == "pg" {
					detail += " Did you mean \"postgres\"?"
				}
				l.errorf(a.Expr.Range(), "Invalid backend", "%s", detail)
				return
			}
		}
	}
	pg := st.Backend == "postgres"
	for _, name := range []string{"dsn", "schema", "name", "lease"} {
		if a, ok := attr(name); ok && !pg {
			l.errorf(a.NameRange, fmt.Sprintf("Unexpected %s", name), "%s is an argument of the postgres backend; this state block's backend is %q.", name, st.Backend)
		}
	}
	if !pg {
		l.stateBackupStore(content, ctx, st)
		return
	}
	if a, ok := attr("dsn"); ok {
		if s, ok := l.evalString(a, ctx, "dsn"); ok {
			st.DSN = s
		}
	} else if s, ok := l.env("UPGRADER_STATE_DSN"); ok && s != "" {
		st.DSN = s
	} else {
		l.errorf(b.DefRange, "Missing state dsn", "The postgres backend needs a dsn: dsn = var.state_dsn (a sensitive variable), or the environment variable UPGRADER_STATE_DSN.")
	}
	if a, ok := attr("schema"); ok {
		if s, ok := l.evalString(a, ctx, "schema"); ok {
			if !stateSchemaRE.MatchString(s) {
				l.errorf(a.Expr.Range(), "Invalid schema", "schema is a PostgreSQL schema name of lower-case letters, digits and _ (at most 63), not %q.", s)
			} else {
				st.Schema = s
			}
		}
	}
	if a, ok := attr("name"); ok {
		if s, ok := l.evalString(a, ctx, "name"); ok {
			if !stateNameRE.MatchString(s) {
				l.errorf(a.Expr.Range(), "Invalid name", "name is the workspace: letters, digits, '.', '_' and '-' (at most 100), not %q.", s)
			} else {
				st.Name = s
			}
		}
	} else {
		l.errorf(b.DefRange, "Missing state name", "The postgres backend needs a name: the workspace the runs of this procedure share (name = \"shop-prod\").")
	}
	if a, ok := attr("lease"); ok {
		if d, ok := l.evalDuration(a, ctx, "lease"); ok {
			if d < time.Second || d > 24*time.Hour {
				l.errorf(a.Expr.Range(), "Invalid lease", "lease must be between 1s and 24h, not %s.", d)
			} else {
				st.Lease = d
			}
		}
	}
	l.stateBackupStore(content, ctx, st)
}

func (l *loader) stateBackupStore(content *hcl.BodyContent, ctx *hcl.EvalContext, st *State) {
	a, ok := content.Attributes["backup_store"]
	if !ok {
		return
	}
	s, ok := l.evalString(a, ctx, "backup_store")
	if !ok {
		return
	}
	// Not built yet: backups go to the state directory (-state-dir, which
	// may be a shared mount). Refused rather than silently ignored.
	what := "a directory"
	if strings.Contains(s, "://") {
		what = strings.SplitN(s, "://", 2)[0]
	}
	l.errorf(a.Expr.Range(), "Unsupported backup_store", "backup_store (%s) is not supported by this version of upgrader: backups go to the state directory (-state-dir; a shared mount works). Leave it out.", what)
}
