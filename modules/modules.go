// Package modules owns the contract between the executor and the things it
// runs: the Module interfaces (node kinds, step actions, check probes), the
// request/response types, the host Reader/Target interfaces and the registry.
//
// It imports only lang/diags and the HCL/cty libraries; it never imports the
// executor, lang or a module package. A module package (modules/<kind>)
// imports only this package and lang/diags.
package modules

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// ---------------------------------------------------------------------------
// Hosts

// HostInfo is a host as the configuration declares it.
type HostInfo struct {
	Name    string
	Address string
	Port    int
	User    string
	Labels  map[string]string
}

// FileInfo describes a remote path. A missing path is Exists == false, not an error.
type FileInfo struct {
	Exists     bool
	IsDir      bool
	IsLink     bool
	LinkTarget string // when IsLink
	Mode       os.FileMode
	Size       int64
	UID, GID   int
	ModTime    time.Time
}

// Command is one remote command. Cmd is a shell command line run by the
// remote user's /bin/sh (each command in its own subshell: cwd and
// environment never leak from one command to the next).
type Command struct {
	Cmd     string
	Env     map[string]string
	Sudo    bool          // run through `sudo -n`
	Timeout time.Duration // 0: the transport's default command timeout
	Stdin   io.Reader     // non-nil forces a session of its own
	// TTY runs the command on a pseudo-terminal (stdin, stdout and stderr;
	// stderr is then part of Stdout), for a program that insists on one.
	TTY    bool
	Stdout io.Writer // optional: streamed copy of stdout (progress, run log)
	Stderr io.Writer // optional: streamed copy of stderr
}

// Result of a command. A non-zero exit is a Result, not an error; an error
// means the command could not be run or its outcome is unknown (transport).
type Result struct {
	ExitCode  int
	Stdout    []byte // capped (MaxOutput); Truncated says so
	Stderr    []byte
	Truncated bool
}

// MaxOutput caps what a Result keeps of stdout and stderr each.
const MaxOutput = 64 << 10

// Reader is read-only access to a host: all that plan may use.
// Implementations must be safe for concurrent use.
type Reader interface {
	Host() HostInfo
	Stat(ctx context.Context, path string) (FileInfo, error)
	// SHA256 returns the hex sha256 of a regular file, "" when it does not exist.
	SHA256(ctx context.Context, path string) (string, error)
	// ReadFile reads at most limit bytes; os.ErrNotExist (wrapped) when missing.
	ReadFile(ctx context.Context, path string, limit int64) ([]byte, error)
	// Probe runs a command that, by its author's promise, does not change the
	// host (test -e, du -sb, readlink, an `unless` guard). Plan uses only this.
	Probe(ctx context.Context, cmd Command) (Result, error)
}

// Target is full access to a host: what apply may use.
type Target interface {
	Reader
	Run(ctx context.Context, cmd Command) (Result, error)
	// WriteFile writes atomically: a temporary name in the same directory,
	// fsync, chmod, rename over path. A cut transfer leaves no partial file at path.
	WriteFile(ctx context.Context, path string, r io.Reader, mode os.FileMode) error
	// Dial opens a connection from the host (an SSH tunnel), e.g. to a database
	// that listens only there.
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// ---------------------------------------------------------------------------
// Databases

// Database is a database block, resolved.
type Database struct {
	Name   string
	Driver string // "postgres" or "mysql"
	DSN    string // sensitive: never print it
	Host   string // "" when not set: the DSN is reached directly and dumps run locally
}

// MetricSource is a metric_source block, resolved: a Prometheus server's
// base URL and what every request to it carries.
type MetricSource struct {
	Name string
	Kind string // "prometheus"
	URL  string
	// Headers go with every request; their values are secrets (tokens):
	// never print them, not even in an error.
	Headers      map[string]string
	SensitiveURL bool          // the url came from a sensitive value: show "(sensitive)"
	Timeout      time.Duration // per request
}

// ---------------------------------------------------------------------------
// Modules

// Config is one decoded block body handed to a module.
type Config struct {
	// Value is the body decoded with the module's Spec(). At plan time values
	// known only after another node ran are unknown (cty.UnknownVal), marked
	// with "after:<node address>" so views can print "(known after NODE)".
	Value cty.Value
	// Ranges maps each attribute name present in the body to the range of its
	// expression, and each nested block type to its first block's DefRange,
	// so modules can report FILE:LINE:COL. Nested blocks also give
	// "BLOCK.N" (the block's DefRange) and "BLOCK.N.ATTR" (N: the block's
	// position among blocks of that type, from 0), at any depth
	// ("log.1.pattern", "a.0.b.2.c").
	Ranges    map[string]hcl.Range
	DeclRange hcl.Range
	Dir       string // the configuration directory: relative local paths start here
	// Functions are the language's pure functions, as Env.Functions gives
	// them, for Validate (which has no Env); nil in module unit tests.
	Functions map[string]function.Function
}

// Range returns the range of attr, falling back to the block's DeclRange.
func (c *Config) Range(attr string) *hcl.Range {
	if r, ok := c.Ranges[attr]; ok {
		return &r
	}
	r := c.DeclRange
	return &r
}

// Module is what every kind implements.
type Module interface {
	// Kind is the block type: "upload", "backup", "http", ...
	Kind() string
	// Spec declares the block body; the executor decodes it for the module.
	Spec() hcldec.Spec
}

// Validator is optional: static checks at validate time (no network).
// cfg.Value may hold unknowns; skip what cannot be judged yet.
type Validator interface {
	Validate(cfg *Config) hcl.Diagnostics
}

// Request is what every module call receives.
type Request struct {
	Config *Config
	// Node is the address of the graph node ("step.install", "backup.db").
	Node string
	// Host is the host an action runs on ("" for node kinds and probes that
	// name their own host in their body).
	Host string
	// Index of the action within its step (0-based); -1 for nodes.
	Index int
	Env   Env
	// Log receives human progress lines and streamed command output.
	Log io.Writer
	// Record journals (and fsyncs) the state Undo will need. Call it BEFORE
	// changing anything, so that a crash mid-change can still be undone.
	// It is nil at plan time.
	Record func(state json.RawMessage) error
	// Secrets holds the run's sensitive strings, the ones in Config among
	// them: scrub text with Secrets.Redact before cutting it to a length
	// (the executor scrubs what it receives, but a cut value no longer
	// matches). nil in unit tests: nothing to scrub.
	Secrets *Secrets
}

// Env is what the executor offers modules. At plan time Target returns an
// error (plan cannot change hosts): use Reader.
type Env interface {
	RunID() string
	StateDir() string
	Reader(host string) (Reader, error)
	Target(host string) (Target, error)
	Database(name string) (*Database, error)
	// DialDatabase returns a dialer for the database's DSN: through an SSH
	// tunnel from its host when one is set, directly otherwise.
	DialDatabase(name string) (func(ctx context.Context, network, addr string) (net.Conn, error), error)
	// MetricSource returns a metric_source block ("prom" or "metric_source.prom").
	MetricSource(name string) (*MetricSource, error)
	// Check runs the named check node once (its own retries included); used by observe.
	Check(ctx context.Context, name string) error
	// Checkpoint durably stores a node's resumable state under key (observe:
	// deadline, log offsets); Recall reads it back after a resume.
	Checkpoint(key string, v any) error
	Recall(key string, v any) (bool, error)
	// Approved reports whether an operator ran `upgrader approve RUN NODE`
	// for this node (ends an observation window early as passed).
	Approved(node string) bool
	// Progress reports bytes done of total (total < 0: unknown) for the live view.
	Progress(done, total int64)
	// Functions returns the language's pure functions (lang's table without
	// timestamp, env, templatefile) for expressions a module evaluates
	// itself (template); nil when there are none (a module's own set then).
	Functions() map[string]function.Function
	// ProtectedRun is the newest run of this state directory that finished
	// done ("" when none): its backups are the way back to a known good
	// state, so pruning keeps them.
	ProtectedRun() string
	// AppendSamples appends observation records (JSON lines, each ending
	// with a newline) to the run's samples in its state store, all or
	// nothing; ReadSamples streams them back in order (a torn tail skipped).
	AppendSamples(lines []byte) error
	ReadSamples(fn func(line []byte) error) error
}

// Change is a plan's verdict for one action or node on one host.
type Change string

const (
	Create Change = "+" // a new file, release, backup ...
	Update Change = "~" // an existing thing changes
	NoOp   Change = "=" // nothing to do; Reason says why
	Delete Change = "-"
	Exec   Change = "!" // a command will run (effect unknown to plan)
	Skip   Change = "s" // skipped; Reason says why (creates/unless)
	Read   Change = "r" // reads only (checks, observe, backup from a host)
)

// Plan is one module's answer at plan time.
type Plan struct {
	Change  Change
	Summary string // one line: "/etc/app/app.conf (~ changed, 312 B)"
	Detail  string // optional, multi-line (a unified diff, a schema diff)
	Reason  string // why NoOp/Skip
	Undo    string // what undoes it, in words ("previous content restored")
	// Facts are what the read-only probe saw ("sha256 /etc/app/app.conf" ->
	// "ab12..."). A saved plan records them; apply refuses a saved plan when
	// any fact differs on re-probe.
	Facts map[string]string
	// Outputs known at plan time (schema_check can know .matches at plan).
	Outputs map[string]cty.Value
	// Warnings (e.g. "MySQL migrations are not transactional").
	Warnings []string
	// Data is the plan for programs, when Detail has a structure worth
	// keeping (schema_check's differences): plan -json prints it as "data".
	Data json.RawMessage
}

// Outcome is what Apply returns.
type Outcome struct {
	Changed bool
	Skipped string // non-empty: skipped, with the reason
	Message string // one line for the view
	Outputs map[string]cty.Value
	// Undo state, if not already given through Request.Record.
	Undo json.RawMessage
}

// Planner is implemented by every node kind and action.
type Planner interface {
	Plan(ctx context.Context, req *Request) (*Plan, error)
}

// Applier is implemented by every node kind and action.
type Applier interface {
	Apply(ctx context.Context, req *Request) (*Outcome, error)
}

// Undoer is optional: a module that can undo itself given the state it recorded.
type Undoer interface {
	Undo(ctx context.Context, req *Request, state json.RawMessage) error
}

// Repeatable is optional: Safe reports whether a call that was in flight when
// upgrader died may be run again on resume (uploads, releases, checks: yes;
// a run action only with creates/unless/idempotent). A kind without it is
// not repeated on its own: resume asks for -retry NODE or a rollback.
type Repeatable interface {
	Safe(cfg *Config) bool
}

// RepeatExplainer is optional for a Repeatable kind: when Safe says no, what
// would make it safe, for the resume refusal ("no creates, unless or
// idempotent = true").
type RepeatExplainer interface {
	Unsafe(cfg *Config) string
}

// Describer is optional: how a plan that contacts no host (plan -offline,
// and every check's probe lines) shows the block, from its arguments alone.
// Without it the line lists every argument by name, and the change is Exec
// for actions and nodes, Read for probes.
type Describer interface {
	Describe(cfg *Config) Description
}

// Description is a block described without contacting a host.
type Description struct {
	// Summary is the whole line ("observe web for 5m every 10s"); it must
	// show sensitive values as Shown does. "": the kind and Attrs.
	Summary string
	// Attrs are the arguments to list after the kind, in this order; the
	// executor prints their values ("(sensitive)", "(known after NODE)").
	// Null ones are left out. nil: every argument, by name.
	Attrs []string
	// Change is what the block does: Read (reads only), Create/Update (a
	// change plan can describe), Exec (a command of unknown effect).
	// "": the default above.
	Change Change
}

// UndoDescriber is optional for actions: what undoes the action when its
// step has no rollback block, in words, for the plan ("previous content
// restored"). Without it: "its own undo" for an Undoer, otherwise "none: a
// rollback block is needed to undo it".
type UndoDescriber interface {
	UndoText() string
}

// Hostless is optional for actions that know where they act without being
// given a host (restore acts where its backup was taken): only such actions
// may stand in a module node's rollback block, which has no host.
type Hostless interface {
	Hostless() bool
}

// Action is a block inside a step: upload, template, release, run, restore.
type Action interface {
	Module
	Planner
	Applier
}

// Node is a top-level graph node kind handled by a module: backup,
// schema_check, migrate, observe.
type Node interface {
	Module
	Planner
	Applier
	// Outputs declares the node's outputs (for references like
	// schema_check.NAME.matches); unknown at plan unless Plan sets them.
	Outputs() map[string]cty.Type
}

// Probe is a block inside a check: http, command, sql. Check returns nil on
// success, or an error saying what was expected and what came back (trimmed).
type Probe interface {
	Module
	Check(ctx context.Context, req *Request) error
}

// Changes is optional for Node kinds: the hosts and databases a node changes,
// for the backup interlock (SPEC 2.1). Backups implement Protects instead.
type Changes interface {
	Changes(cfg *Config) (hosts, databases []string)
}

// Protects is implemented by backup kinds: what a completed backup covers.
type Protects interface {
	Protects(cfg *Config) (hosts, databases []string)
}
