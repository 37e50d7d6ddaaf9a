package lang

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// loader holds the state of one Load.
type loader struct {
	cfg     *Config
	schemas Schemas
	opts    Options
	parser  *hclparse.Parser
	diags   hcl.Diagnostics
	env     func(string) (string, bool)

	varBlocks    []*hcl.Block
	localsBlocks []*hcl.Block
	connBlocks   []*hcl.Block
	sshConfigs   map[string]sshConfigResult // parsed once per path
	hostBlocks   []*hcl.Block
	dbBlocks     []*hcl.Block
	stateBlocks  []*hcl.Block
	msBlocks     []*hcl.Block // metric_source
	notifyBlocks []*hcl.Block
	phaseBlocks  []*hcl.Block
	nodeBlocks   []nodeBlock

	// Where each variable's value came from (nil: -var, env or none).
	varSource map[string]*hcl.Range
	// Temporary per-node state for the graph.
	pending map[string]*pendingNode
	// inStatic: decoding hosts and databases, where nodes are out of scope.
	inStatic    bool
	inForEach   bool // decoding one key of a for_each: each.* is in scope
	schemaCache *nodeSchemas
}

type nodeBlock struct {
	block *hcl.Block
	phase string
}

// Load reads the configuration in dir: every *.hcl file but *.vars.hcl (not
// recursive). It always returns a Config; when the diagnostics hold errors
// the Config is partial and good only for rendering them (Files).
func Load(dir string, schemas Schemas, opts Options) (*Config, hcl.Diagnostics) {
	l := &loader{
		cfg: &Config{
			Dir:           dir,
			Files:         map[string]*hcl.File{},
			Variables:     map[string]*Variable{},
			Locals:        map[string]cty.Value{},
			Hosts:         map[string]*Host{},
			HostSets:      map[string]*HostSet{},
			Databases:     map[string]*Database{},
			MetricSources: map[string]*MetricSource{},
			Phases:        map[string]*Phase{},
			Nodes:         map[string]*Node{},
			Apply:         opts.Apply,
		},
		schemas:   schemas,
		opts:      opts,
		parser:    hclparse.NewParser(),
		varSource: map[string]*hcl.Range{},
		pending:   map[string]*pendingNode{},
	}
	l.env = func(k string) (string, bool) { return os.LookupEnv(k) }
	if opts.Env != nil {
		l.env = func(k string) (string, bool) { v, ok := opts.Env[k]; return v, ok }
	}
	l.load()
	SortDiagnostics(l.diags)
	return l.cfg, l.diags
}

// SortDiagnostics orders diagnostics by file and position (sourceless
// first, stable otherwise), so output reads top to bottom.
func SortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

func (l *loader) load() {
	hash := sha256.New()
	names, err := configFiles(l.cfg.Dir)
	if err != nil {
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read the configuration directory", Detail: err.Error()})
		return
	}
	if len(names) == 0 {
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No configuration files",
			Detail: fmt.Sprintf("The directory %s holds no *.hcl file (files named *.vars.hcl hold variable values and are read only with -var-file).", l.cfg.Dir)})
		return
	}
	// Parse the files in parallel (parsing dominates big configurations),
	// then use them in name order so everything after is deterministic.
	type parsed struct {
		src   []byte
		file  *hcl.File
		diags hcl.Diagnostics
		err   error
	}
	results := make([]parsed, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range names {
		wg.Add(1)
		go func(i int, path string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &results[i]
			r.src, r.err = os.ReadFile(path)
			if r.err == nil {
				if r.diags = diags.Nesting(r.src, path, false); r.diags == nil {
					r.file, r.diags = hclsyntax.ParseConfig(r.src, path, hcl.Pos{Line: 1, Column: 1})
				}
			}
		}(i, filepath.Join(l.cfg.Dir, name))
	}
	wg.Wait()
	var bodies []*hclsyntax.Body
	for i, name := range names {
		r := results[i]
		if r.err != nil {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read a configuration file", Detail: r.err.Error()})
			continue
		}
		fmt.Fprintf(hash, "%s\x00%d\x00", name, len(r.src))
		hash.Write(r.src)
		l.diags = append(l.diags, r.diags...)
		if r.file == nil {
			continue
		}
		l.cfg.Files[filepath.Join(l.cfg.Dir, name)] = r.file
		if b, ok := r.file.Body.(*hclsyntax.Body); ok {
			bodies = append(bodies, b)
		}
	}
	if l.diags.HasErrors() {
		// Syntax errors first: decoding what the parser recovered would
		// only add confusing follow-up errors.
		return
	}
	for _, b := range bodies {
		l.sortTopLevel(b)
	}

	l.cfg.scope = &scope{funcs: functions(l.cfg.Dir, l.env, l.opts.Apply)}
	l.decodeVariables()
	l.decodeLocals()
	// The static scope grows as the blocks it names are decoded.
	l.cfg.scope.static = map[string]cty.Value{"var": l.varObject(), "local": cty.ObjectVal(l.cfg.Locals)}
	l.decodeConnectionAndHosts()
	l.decodeDatabases()
	l.decodeState()
	l.decodeMetricSources()
	l.decodeNotifies()
	l.decodeGraph(bodies)

	// The hash covers the files and the (non-sensitive) variable values, so
	// a saved plan can tell that either changed.
	var vnames []string
	for n := range l.cfg.Variables {
		vnames = append(vnames, n)
	}
	sort.Strings(vnames)
	for _, n := range vnames {
		v := l.cfg.Variables[n]
		if v.Sensitive || !v.Value.IsWhollyKnown() {
			continue
		}
		raw, _ := v.Value.UnmarkDeep()
		if js, err := ctyjson.Marshal(raw, raw.Type()); err == nil {
			fmt.Fprintf(hash, "var\x00%s\x00%s\x00", n, js)
		}
	}
	l.cfg.Hash = hex.EncodeToString(hash.Sum(nil))
}

// configFiles lists the *.hcl files of dir, sorted, without *.vars.hcl.
func configFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".hcl") || strings.HasSuffix(n, ".vars.hcl") || strings.HasPrefix(n, ".") {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// builtinKinds are the node kinds lang decodes itself.
var builtinKinds = []string{KindCheck, KindGate, KindStep}

// nodeKinds returns every node kind, sorted: built-in and module kinds.
func (l *loader) nodeKinds() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range builtinKinds {
		seen[k] = true
		out = append(out, k)
	}
	for k := range l.schemas.Nodes {
		if !seen[k] && !reservedRoot[k] && hclsyntax.ValidIdentifier(k) {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (l *loader) isNodeKind(k string) bool {
	switch k {
	case KindStep, KindCheck, KindGate:
		return true
	}
	if reservedRoot[k] {
		return false
	}
	_, ok := l.schemas.Nodes[k]
	return ok
}

// reservedRoot are names that can not be module node kinds.
var reservedRoot = map[string]bool{
	"var": true, "local": true, "locals": true, "host": true, "database": true, "metric_source": true, "run": true,
	"phase": true, "variable": true, "connection": true, "rollback": true, "state": true, "notify": true,
}

// sortTopLevel files the top-level blocks of one file by type and reports
// anything that is not a known block.
func (l *loader) sortTopLevel(body *hclsyntax.Body) {
	known := []string{"variable", "locals", "connection", "host", "database", "metric_source", "phase", "state", "notify"}
	known = append(known, l.nodeKinds()...)
	for _, a := range body.Attributes {
		rng := a.NameRange
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported argument",
			Detail:  fmt.Sprintf("An argument %q is not expected at the top level of a configuration, which holds only blocks: %s.", a.Name, strings.Join(known, ", ")),
			Subject: &rng})
	}
	for _, sb := range body.Blocks {
		b := sb.AsHCLBlock()
		switch {
		case b.Type == "locals" || b.Type == "connection" || b.Type == "state":
			if !l.labels(b, 0) {
				continue
			}
		case b.Type == "variable" || b.Type == "host" || b.Type == "database" || b.Type == "metric_source" || b.Type == "phase" || b.Type == "notify" || l.isNodeKind(b.Type):
			if !l.labels(b, 1) {
				continue
			}
		default:
			l.unknownBlock(b, "the top level", known)
			continue
		}
		switch b.Type {
		case "variable":
			l.varBlocks = append(l.varBlocks, b)
		case "locals":
			l.localsBlocks = append(l.localsBlocks, b)
		case "connection":
			l.connBlocks = append(l.connBlocks, b)
		case "host":
			l.hostBlocks = append(l.hostBlocks, b)
		case "database":
			l.dbBlocks = append(l.dbBlocks, b)
		case "state":
			l.stateBlocks = append(l.stateBlocks, b)
		case "metric_source":
			l.msBlocks = append(l.msBlocks, b)
		case "notify":
			l.notifyBlocks = append(l.notifyBlocks, b)
		case "phase":
			l.phaseBlocks = append(l.phaseBlocks, b)
		default:
			l.nodeBlocks = append(l.nodeBlocks, nodeBlock{block: b})
		}
	}
}

func (l *loader) unknownBlock(b *hcl.Block, where string, known []string) {
	rng := b.TypeRange
	detail := fmt.Sprintf("Blocks of type %q are not expected in %s.", b.Type, where)
	if s := suggest(b.Type, known); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	if len(known) > 0 {
		detail += " Known block types here: " + strings.Join(known, ", ") + "."
	} else {
		detail += " No blocks are expected here."
	}
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported block type", Detail: detail, Subject: &rng})
}

// labels checks that b has n labels and that they are valid names.
func (l *loader) labels(b *hcl.Block, n int) bool {
	if len(b.Labels) != n {
		rng := b.DefRange
		if n == 0 {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Extraneous label",
				Detail: fmt.Sprintf("A %s block has no labels.", b.Type), Subject: &rng})
		} else {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Wrong number of labels for %s", b.Type),
				Detail: fmt.Sprintf("A %s block has exactly one label, its name: %s \"NAME\" { ... }.", b.Type, b.Type), Subject: &rng})
		}
		return false
	}
	for i, lab := range b.Labels {
		if !hclsyntax.ValidIdentifier(lab) {
			rng := b.LabelRanges[i]
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid name",
				Detail:  fmt.Sprintf("%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter, so it can be referenced as %s.NAME.", lab, b.Type),
				Subject: &rng})
			return false
		}
	}
	return true
}

// content decodes body with schema; unknown arguments and blocks are
// reported with the list of those expected in where.
func (l *loader) content(body hcl.Body, schema *hcl.BodySchema, where string) *hcl.BodyContent {
	if sb, ok := body.(*hclsyntax.Body); ok {
		hasAttr := func(n string) bool {
			for _, a := range schema.Attributes {
				if a.Name == n {
					return true
				}
			}
			return false
		}
		hasBlock := func(n string) bool {
			for _, b := range schema.Blocks {
				if b.Type == n {
					return true
				}
			}
			return false
		}
		// Name lists only for the diagnostics, which are rare.
		names := func() (attrNames, blockNames []string) {
			for _, a := range schema.Attributes {
				attrNames = append(attrNames, a.Name)
			}
			seen := map[string]bool{}
			for _, b := range schema.Blocks {
				if !seen[b.Type] {
					seen[b.Type] = true
					blockNames = append(blockNames, b.Type)
				}
			}
			sort.Strings(attrNames)
			sort.Strings(blockNames)
			return
		}
		for _, a := range sb.Attributes {
			if hasAttr(a.Name) {
				continue
			}
			attrNames, _ := names()
			rng := a.NameRange
			detail := fmt.Sprintf("An argument named %q is not expected in %s.", a.Name, where)
			if hasBlock(a.Name) {
				detail += fmt.Sprintf(" %q is a block here: %s { ... }.", a.Name, a.Name)
			} else if s := suggest(a.Name, attrNames); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			if len(attrNames) > 0 {
				detail += " Arguments here: " + strings.Join(attrNames, ", ") + "."
			}
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported argument", Detail: detail, Subject: &rng})
		}
		for _, b := range sb.Blocks {
			if !hasBlock(b.Type) {
				_, blockNames := names()
				l.unknownBlock(b.AsHCLBlock(), where, blockNames)
			}
		}
	}
	c, _, diags := body.PartialContent(schema)
	l.diags = append(l.diags, diags...)
	if c == nil {
		c = &hcl.BodyContent{Attributes: hcl.Attributes{}}
	}
	return c
}

func at(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

func (l *loader) errorf(rng hcl.Range, summary, format string, args ...interface{}) {
	l.diags = append(l.diags, at(rng, summary, fmt.Sprintf(format, args...)))
}

// firstAt names where something was first declared, for duplicate diagnostics.
func firstAt(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", rng.Filename, rng.Start.Line, rng.Start.Column)
}
