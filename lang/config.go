// Package lang owns the upgrader language: parsing a configuration
// directory, the block schemas of the top-level blocks, the two-phase decode
// (variables and locals first, then everything else), the evaluation scope
// and functions, and reference extraction (which orders the graph).
//
// lang never imports the executor or a module package. It learns module
// body schemas through the Schemas it is given.
package lang

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// Schemas tells lang the body of each module kind, by block type.
// cmd/upgrader builds it from the modules.Registry.
type Schemas struct {
	Nodes   map[string]hcldec.Spec // top-level node kinds: backup, schema_check, migrate, observe
	Actions map[string]hcldec.Spec // blocks inside step and rollback: upload, template, release, run, restore
	Probes  map[string]hcldec.Spec // blocks inside check: http, command, sql
	// Outputs declares each module node kind's outputs (besides "name" and
	// "kind", which every node has and which are known at plan time).
	Outputs map[string]map[string]cty.Type
}

// RunInfo is the run.* scope.
type RunInfo struct {
	ID        string
	StartedAt time.Time
}

// Options for Load.
type Options struct {
	Vars     []string          // -var name=value, in order
	VarFiles []string          // -var-file FILE
	Env      map[string]string // environment (UPGRADER_VAR_name); nil: os.Environ
	// Apply makes impure functions (timestamp) return real values, in locals
	// and in EvalContext. Validate and plan leave it false: those values are
	// then unknown, marked AfterMark("apply").
	Apply bool
	// Unset lets required variables without a value load as unknown
	// values (validate): the configuration is checked regardless of any
	// provided variables, as `terraform validate` does. Plan and apply
	// leave it false, so a missing value is still an error there.
	Unset bool
}

// Config is a loaded, validated configuration directory.
type Config struct {
	Dir   string
	Files map[string]*hcl.File // by file name, for diagnostics and fmt
	Hash  string               // sha256 over the files' names and bytes (and var values)

	Variables map[string]*Variable
	Locals    map[string]cty.Value
	Hosts     map[string]*Host
	HostOrder []string // declaration order
	// HostSets are host blocks with for_each: each key is a host in Hosts
	// (named by the key), host.NAME in expressions the set.
	HostSets  map[string]*HostSet
	Databases map[string]*Database
	State     *State // the state block; nil: the local state directory
	// MetricSources: metric_source blocks by name.
	MetricSources map[string]*MetricSource

	// Notifies: notify blocks by name, NotifyOrder as declared.
	Notifies    map[string]*Notify
	NotifyOrder []string

	Phases     map[string]*Phase
	PhaseOrder []string // a topological order of phases

	// Nodes by address ("step.install", "backup.db", "check.regression",
	// "observe.soak", "gate.go", "schema_check.x", "migrate.prod").
	Nodes map[string]*Node

	Apply bool // loaded with Options.Apply
	// Unset names the required variables that had no value and were
	// loaded as unknown (Options.Unset), in declaration order.
	Unset []string
	scope *scope // what EvalContext builds on
}

// Variable is a variable block with its resolved value.
type Variable struct {
	Name        string
	Type        cty.Type
	Description string
	Sensitive   bool
	Value       cty.Value // marked "sensitive" when Sensitive
	DeclRange   hcl.Range
}

// Connection is the resolved SSH connection of one host (defaults, then the host's overrides).
type Connection struct {
	User              string
	Port              int
	PrivateKeyFile    string // "~" expanded
	Agent             bool
	KnownHostsFile    string // "~" expanded
	AcceptNewHostKeys bool
	Bastion           string // user@host:port, "" for none
	Timeout           time.Duration
	Sudo              bool
	// SudoPassword is given to sudo on its stdin; a secret whatever its
	// marks: never print it. "" for passwordless sudo.
	SudoPassword string

	// SSHConfig is the OpenSSH client configuration file read for the
	// settings the HCL leaves unset ("" when off). See sshconfig.go.
	SSHConfig      string
	KeyFiles       []string // IdentityFile lines (when private_key_file is unset)
	IdentitiesOnly bool
	HashKnownHosts bool
	Jumps          []Jump // ProxyJump chain, first hop first
	// Origins says where each effective setting came from, by name
	// (address, user, port, ...): "ssh_config line 12", "main.hcl:4", "default".
	Origins     map[string]string
	set         map[string]string // attributes written in HCL: name -> "FILE:LINE"
	sshConfigAt hcl.Range         // the ssh_config attribute, when written
}

// Jump is one hop of a jump chain, resolved like a host.
type Jump struct {
	Name           string // as written in ProxyJump
	Address        string
	Port           int
	User           string
	KeyFiles       []string
	KnownHostsFile string
}

// Host is a host block.
type Host struct {
	Name      string
	Address   string
	Labels    map[string]string
	Conn      Connection
	DeclRange hcl.Range
	Set       string // the host set (for_each) it belongs to; "" for a plain host
}

// HostSet is a host block with for_each.
type HostSet struct {
	Name      string
	Keys      []string // its hosts' names, sorted
	DeclRange hcl.Range
}

// Database is a database block.
type Database struct {
	Name      string
	Driver    string // postgres | mysql
	DSN       string // may be sensitive: never print
	Host      string // "" when not set
	DeclRange hcl.Range
}

// MetricSource is a metric_source block: where observe's metric blocks and
// the prometheus check probe send their queries.
type MetricSource struct {
	Name string
	Kind string // "prometheus" (the one kind so far)
	URL  string
	// Headers go with every request (Authorization, X-Scope-OrgID, ...).
	// Values may be sensitive: never print them.
	Headers map[string]string
	// SensitiveURL: the url came from a sensitive value (it may hold
	// credentials); it is then shown as "(sensitive)".
	SensitiveURL bool
	Timeout      time.Duration // per query; default 10s
	DeclRange    hcl.Range
}

// Phase is a phase block.
type Phase struct {
	Name      string
	DependsOn []string // phase names
	// DependsOnRanges: phase name -> where it is written in depends_on.
	DependsOnRanges map[string]hcl.Range
	OnFailure       string // "rollback" (default) or "stop"
	Escalate        *Escalate
	Nodes           []string // addresses of the nodes declared inside
	DeclRange       hcl.Range
}

// Escalate is a phase's escalate block.
type Escalate struct {
	Checks   []string // check node addresses ("check.regression")
	Rollback string   // "all"
	Range    hcl.Range
}

// Node kinds that lang decodes itself; every other kind is a module node.
const (
	KindStep  = "step"
	KindCheck = "check"
	KindGate  = "gate"
)

// Node is one graph node.
type Node struct {
	Addr  string // kind.name
	Kind  string
	Name  string
	Phase string // "" when at top level

	// DependsOn holds the addresses of every node this one must follow:
	// explicit depends_on, references in any expression of the node, and
	// phase order (every node of a phase listed in the phase's depends_on).
	DependsOn []string
	// DependsOnRanges gives, for each address in DependsOn that comes from
	// depends_on or a reference, where it is written (for cycle
	// diagnostics). Phase-order dependencies are not in it (a phase of N
	// nodes after one of M can give N x M of them): Config.DependencyRange
	// answers for every address.
	DependsOnRanges map[string]hcl.Range

	When      hcl.Expression // nil when absent
	DeclRange hcl.Range

	// Module node kinds (backup, schema_check, migrate, observe): the body
	// without depends_on/when, and its spec.
	Body hcl.Body
	Spec hcldec.Spec
	// Loaded is Body decoded by Load in the validate scope (node outputs
	// unknown); nil when that gave errors. Validate reuses it.
	Loaded *Decoded
	// Rollback is a module node's `rollback` block (its actions, top to
	// bottom); nil when none. The executor runs it instead of the module's
	// Undoer (migrate: restore a database backup instead of down files).
	Rollback []*Block

	Step  *Step
	Check *Check
	Gate  *Gate
}

// Step is a step's own arguments and its ordered actions.
type Step struct {
	Hosts          hcl.Expression // `host = X` or `hosts = [...]`: evaluate with EvalContext; each element a host object
	HostNames      []string       // Hosts as Load resolved it; nil when it depends on node outputs (then: StepHosts)
	BatchSize      int            // 0: all hosts at once
	BackupRequired bool           // default true
	WaiverRange    hcl.Range      // where backup_required = false was written
	Actions        []*Block
	Rollback       []*Block // nil when no rollback block
}

// Check is a check node.
type Check struct {
	Retries  int           // default 0 (one attempt)
	Interval time.Duration // default 2s
	Timeout  time.Duration // default 10s, per attempt per probe
	Probes   []*Block
}

// Gate is a gate node.
type Gate struct {
	Message string
	// Timeout: how long it waits for a decision (0: for ever); then
	// OnTimeout decides ("reject", the default, or "approve").
	Timeout   time.Duration
	OnTimeout string
	// Approvers: who may decide (local user names, or `-as NAME`); empty: anyone.
	Approvers []string
	DeclRange hcl.Range
}

// MayDecide reports whether name may approve or reject the gate.
func (g *Gate) MayDecide(name string) bool {
	if len(g.Approvers) == 0 {
		return true
	}
	for _, a := range g.Approvers {
		if a == name {
			return true
		}
	}
	return false
}

// Block is an action (in a step or rollback) or a probe (in a check).
type Block struct {
	Kind      string
	Body      hcl.Body
	Spec      hcldec.Spec
	DeclRange hcl.Range
	Loaded    *Decoded // as Node.Loaded
}

// Decoded is a body decoded with DecodeBody (its ranges: BodyRanges, not
// kept, to keep big configurations small).
type Decoded struct {
	Value cty.Value
}
