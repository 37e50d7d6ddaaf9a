package lang

import (
	"fmt"
	"maps"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var connectionSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "user"}, {Name: "port"}, {Name: "private_key_file"}, {Name: "agent"},
		{Name: "known_hosts_file"}, {Name: "accept_new_host_keys"}, {Name: "bastion"},
		{Name: "timeout"}, {Name: "sudo"}, {Name: "sudo_password"}, {Name: "ssh_config"},
	},
}

var hostSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "address", Required: true}, {Name: "labels"}, {Name: "for_each"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "connection"}},
}

var databaseSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "driver", Required: true}, {Name: "dsn", Required: true}, {Name: "host"}},
}

// staticCtx is the scope for hosts, databases and the arguments lang
// decodes itself: var, local and what is already decoded (host, database).
func (l *loader) staticCtx() *hcl.EvalContext {
	vars := make(map[string]cty.Value, len(l.cfg.scope.static))
	for k, v := range l.cfg.scope.static {
		vars[k] = v
	}
	return &hcl.EvalContext{Variables: vars, Functions: l.cfg.scope.funcs}
}

// eval evaluates an attribute in the static scope and converts it to ty.
// ok is false (and a diagnostic given) when that fails or the value is not
// known at validate time.
func (l *loader) eval(a *hcl.Attribute, ctx *hcl.EvalContext, ty cty.Type, what string) (cty.Value, bool) {
	var r refs
	l.checkRefs(a.Expr.Variables(), &r)
	if len(r.bad) > 0 {
		return cty.DynamicVal, false
	}
	v, diags := a.Expr.Value(ctx)
	l.diags = append(l.diags, scrubDiags(diags)...)
	if diags.HasErrors() {
		return cty.DynamicVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be %s: %s.", what, friendly(ty), err)
		return cty.DynamicVal, false
	}
	if !cv.IsWhollyKnown() {
		if len(AfterNodes(cv)) == 0 {
			return cty.DynamicVal, false // unknown because of an error reported already
		}
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be known before the run starts; %s.", what, afterText(AfterNodes(cv)))
		return cty.DynamicVal, false
	}
	if cv.IsNull() {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must not be null.", what)
		return cty.DynamicVal, false
	}
	if !sensitiveOK[a.Name] && IsSensitive(cv) {
		l.sensitiveNotAllowed(a)
		return cty.DynamicVal, false
	}
	return cv, true
}

// sensitiveOK are the arguments lang decodes that may hold a sensitive
// value: they are never printed.
var sensitiveOK = map[string]bool{"dsn": true, "private_key_file": true, "url": true, "headers": true, "sudo_password": true}

func (l *loader) sensitiveNotAllowed(a *hcl.Attribute) {
	l.errorf(a.Expr.Range(), "Sensitive value not allowed", "%s is shown in plans, logs and reports, so it can not come from a sensitive value.", a.Name)
}

func friendly(ty cty.Type) string {
	switch ty {
	case cty.String:
		return "a string"
	case cty.Number:
		return "a number"
	case cty.Bool:
		return "true or false"
	}
	return ty.FriendlyName()
}

func (l *loader) evalString(a *hcl.Attribute, ctx *hcl.EvalContext, what string) (string, bool) {
	v, ok := l.eval(a, ctx, cty.String, what)
	if !ok {
		return "", false
	}
	v, _ = v.UnmarkDeep()
	return v.AsString(), true
}

func (l *loader) evalBool(a *hcl.Attribute, ctx *hcl.EvalContext, what string) (bool, bool) {
	v, ok := l.eval(a, ctx, cty.Bool, what)
	if !ok {
		return false, false
	}
	v, _ = v.UnmarkDeep()
	return v.True(), true
}

func (l *loader) evalInt(a *hcl.Attribute, ctx *hcl.EvalContext, what string, min, max int) (int, bool) {
	v, ok := l.eval(a, ctx, cty.Number, what)
	if !ok {
		return 0, false
	}
	v, _ = v.UnmarkDeep()
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be a whole number.", what)
		return 0, false
	}
	if bf.Cmp(big.NewFloat(float64(min))) < 0 || bf.Cmp(big.NewFloat(float64(max))) > 0 {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be between %d and %d.", what, min, max)
		return 0, false
	}
	i, _ := bf.Int64()
	return int(i), true
}

func (l *loader) evalDuration(a *hcl.Attribute, ctx *hcl.EvalContext, what string) (time.Duration, bool) {
	s, ok := l.evalString(a, ctx, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s must be a duration like \"30s\", \"5m\" or \"72h\", not %q.", what, s)
		return 0, false
	}
	return d, true
}

// expandPath expands "~" and makes a relative path start at the
// configuration directory.
func (l *loader) expandPath(p string) string {
	if p == "" {
		return ""
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.cfg.Dir, p)
	}
	return p
}

// decodeConnection applies one connection block onto c.
func (l *loader) decodeConnection(b *hcl.Block, c *Connection, ctx *hcl.EvalContext) {
	content := l.content(b.Body, connectionSchema, "a connection block")
	c.set = maps.Clone(c.set)
	if c.set == nil {
		c.set = map[string]string{}
	}
	for name, a := range content.Attributes {
		c.set[name] = fmt.Sprintf("%s:%d", filepath.Base(a.Range.Filename), a.Range.Start.Line)
		switch name {
		case "ssh_config":
			if s, ok := l.evalString(a, ctx, "ssh_config"); ok {
				c.SSHConfig = l.expandPath(s)
				c.sshConfigAt = a.Expr.Range()
			}
		case "user":
			if s, ok := l.evalString(a, ctx, "user"); ok {
				c.User = s
			}
		case "port":
			if p, ok := l.evalInt(a, ctx, "port", 1, 65535); ok {
				c.Port = p
			}
		case "private_key_file":
			if s, ok := l.evalString(a, ctx, "private_key_file"); ok {
				c.PrivateKeyFile = l.expandPath(s)
			}
		case "agent":
			if v, ok := l.evalBool(a, ctx, "agent"); ok {
				c.Agent = v
			}
		case "known_hosts_file":
			if s, ok := l.evalString(a, ctx, "known_hosts_file"); ok {
				c.KnownHostsFile = l.expandPath(s)
			}
		case "accept_new_host_keys":
			if v, ok := l.evalBool(a, ctx, "accept_new_host_keys"); ok {
				c.AcceptNewHostKeys = v
			}
		case "bastion":
			if s, ok := l.evalString(a, ctx, "bastion"); ok {
				c.Bastion = s
			}
		case "timeout":
			if d, ok := l.evalDuration(a, ctx, "timeout"); ok {
				c.Timeout = d
			}
		case "sudo":
			if v, ok := l.evalBool(a, ctx, "sudo"); ok {
				c.Sudo = v
			}
		case "sudo_password":
			if s, ok := l.evalString(a, ctx, "sudo_password"); ok {
				if strings.ContainsAny(s, "\n\r") {
					l.errorf(a.Expr.Range(), "Invalid sudo_password", "sudo_password must be one line: sudo reads it as a line on its standard input.")
				}
				c.SudoPassword = s
			}
		}
	}
}

// defaultUser is the SSH user when no connection block names one: the
// user running upgrader, as ssh(1) does.
func defaultUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "root"
}

func (l *loader) decodeConnectionAndHosts() {
	l.inStatic = true
	defer func() { l.inStatic = false }()
	ctx := l.staticCtx()
	def := Connection{Port: 22, Timeout: 10 * time.Second}
	for i, b := range l.connBlocks {
		if i > 0 {
			l.errorf(b.DefRange, "Duplicate connection block", "The defaults for every host are given once; the first connection block is at %s. A host's own connection block overrides them.", firstAt(l.connBlocks[0].DefRange))
			continue
		}
		l.decodeConnection(b, &def, ctx)
	}
	if def.User == "" {
		def.User = defaultUser()
	}
	if def.KnownHostsFile == "" {
		def.KnownHostsFile = l.expandPath("~/.ssh/known_hosts")
	}
	if _, ok := def.set["ssh_config"]; !ok {
		def.SSHConfig = l.expandPath("~/.ssh/config")
	}

	hostVals := map[string]cty.Value{}
	for _, b := range l.hostBlocks {
		name := b.Labels[0]
		if at := l.hostDeclared(name); at != nil {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate host %q", name), "A host %q was already declared at %s.", name, firstAt(*at))
			continue
		}
		content := l.content(b.Body, hostSchema, "a host block")
		fe, ok := content.Attributes["for_each"]
		if !ok {
			h := l.decodeHost(name, b, content, ctx, def)
			hostVals[name] = hostValue(h)
			continue
		}
		// A host set: one host per key, named by the key; host.NAME is
		// the set (an object by key), host.NAME["KEY"] one of its hosts.
		l.cfg.HostSets[name] = &HostSet{Name: name, DeclRange: b.DefRange}
		members := map[string]cty.Value{}
		for _, kv := range l.forEach(fe, ctx) {
			if at := l.hostDeclared(kv.key); at != nil {
				l.errorf(fe.Expr.Range(), fmt.Sprintf("Duplicate host %q", kv.key), "for_each of host %q makes a host %q, which was already declared at %s.", name, kv.key, firstAt(*at))
				continue
			}
			each := cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(kv.key), "value": kv.value})
			ectx := ctx.NewChild()
			ectx.Variables = map[string]cty.Value{"each": each}
			l.inForEach = true
			h := l.decodeHost(kv.key, b, content, ectx, def)
			l.inForEach = false
			h.Set = name
			l.cfg.HostSets[name].Keys = append(l.cfg.HostSets[name].Keys, kv.key)
			members[kv.key] = hostValue(h)
		}
		hostVals[name] = cty.ObjectVal(members)
	}
	l.cfg.scope.static["host"] = cty.ObjectVal(hostVals)
}

// hostDeclared returns where a host or host set called name was declared (nil: nowhere).
func (l *loader) hostDeclared(name string) *hcl.Range {
	if h, ok := l.cfg.Hosts[name]; ok {
		return &h.DeclRange
	}
	if hs, ok := l.cfg.HostSets[name]; ok {
		return &hs.DeclRange
	}
	return nil
}

// decodeHost decodes one host (of a host block, or one key of its for_each).
func (l *loader) decodeHost(name string, b *hcl.Block, content *hcl.BodyContent, ctx *hcl.EvalContext, def Connection) *Host {
	h := &Host{Name: name, Conn: def, DeclRange: b.DefRange, Labels: map[string]string{}}
	l.cfg.Hosts[name] = h
	l.cfg.HostOrder = append(l.cfg.HostOrder, name)
	if a, ok := content.Attributes["address"]; ok {
		if s, ok := l.evalString(a, ctx, "address"); ok {
			if s == "" {
				l.errorf(a.Expr.Range(), "Invalid address", "address must not be empty.")
			}
			h.Address = s
		}
	}
	if a, ok := content.Attributes["labels"]; ok {
		if v, ok := l.eval(a, ctx, cty.Map(cty.String), "labels"); ok {
			v, _ = v.UnmarkDeep()
			for k, e := range v.AsValueMap() {
				if !e.IsNull() {
					h.Labels[k] = e.AsString()
				}
			}
		}
	}
	for i, cb := range content.Blocks {
		if i > 0 {
			l.errorf(cb.DefRange, "Duplicate connection block", "A host has at most one connection block; the first is at %s.", firstAt(content.Blocks[0].DefRange))
			continue
		}
		l.decodeConnection(cb, &h.Conn, ctx)
	}
	l.applySSHConfig(h, b, def)
	return h
}

type eachKV struct {
	key   string
	value cty.Value
}

// forEach evaluates a for_each: a map (or object) of strings, key => value,
// or a set of strings, each its own key and value; in key order.
func (l *loader) forEach(a *hcl.Attribute, ctx *hcl.EvalContext) []eachKV {
	v, ok := l.eval(a, ctx, cty.DynamicPseudoType, "for_each")
	if !ok {
		return nil
	}
	v, _ = v.UnmarkDeep()
	ty := v.Type()
	bad := func(detail string) []eachKV {
		l.errorf(a.Expr.Range(), "Invalid for_each", "%s", detail)
		return nil
	}
	var out []eachKV
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			se, err := convert.Convert(e, cty.String)
			if err != nil || se.IsNull() {
				return bad(fmt.Sprintf("for_each must be a map of strings (name => address) or a set of strings; the value of %q is %s.", k.AsString(), e.Type().FriendlyName()))
			}
			out = append(out, eachKV{k.AsString(), se})
		}
	case ty.IsSetType():
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			se, err := convert.Convert(e, cty.String)
			if err != nil || se.IsNull() {
				return bad(fmt.Sprintf("for_each must be a map of strings or a set of strings; it holds %s.", e.Type().FriendlyName()))
			}
			out = append(out, eachKV{se.AsString(), se})
		}
	case ty.IsListType() || ty.IsTupleType():
		return bad("for_each must be a map or a set, not a list: a list's order and duplicates would decide the hosts' names. Use toset(...) for a list of names.")
	default:
		return bad(fmt.Sprintf("for_each must be a map of strings (name => address) or a set of strings, not %s.", ty.FriendlyName()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	for _, kv := range out {
		if strings.TrimSpace(kv.key) != kv.key || kv.key == "" || strings.ContainsAny(kv.key, "\"\n\r\t ") {
			return bad(fmt.Sprintf("for_each key %q can not name a host: host names are non-empty and hold no spaces or quotes.", kv.key))
		}
	}
	return out
}

// setMember returns KEY of a traversal host.SET["KEY"].
func setMember(t hcl.Traversal) (string, bool) {
	if len(t) != 3 {
		return "", false
	}
	ix, ok := t[2].(hcl.TraverseIndex)
	if !ok || ix.Key.Type() != cty.String || !ix.Key.IsKnown() {
		return "", false
	}
	return ix.Key.AsString(), true
}

func hostValue(h *Host) cty.Value {
	labels := cty.MapValEmpty(cty.String)
	if len(h.Labels) > 0 {
		m := map[string]cty.Value{}
		for k, v := range h.Labels {
			m[k] = cty.StringVal(v)
		}
		labels = cty.MapVal(m)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":    cty.StringVal(h.Name),
		"address": cty.StringVal(h.Address),
		"port":    cty.NumberIntVal(int64(h.Conn.Port)),
		"user":    cty.StringVal(h.Conn.User),
		"labels":  labels,
	})
}

func (l *loader) decodeDatabases() {
	l.inStatic = true
	defer func() { l.inStatic = false }()
	ctx := l.staticCtx()
	dbVals := map[string]cty.Value{}
	for _, b := range l.dbBlocks {
		name := b.Labels[0]
		if prev, dup := l.cfg.Databases[name]; dup {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate database %q", name), "A database %q was already declared at %s.", name, firstAt(prev.DeclRange))
			continue
		}
		d := &Database{Name: name, DeclRange: b.DefRange}
		l.cfg.Databases[name] = d
		content := l.content(b.Body, databaseSchema, "a database block")
		if a, ok := content.Attributes["driver"]; ok {
			if s, ok := l.evalString(a, ctx, "driver"); ok {
				switch s {
				case "postgres", "mysql":
					d.Driver = s
				default:
					detail := fmt.Sprintf("driver is \"postgres\" or \"mysql\" (for MySQL and MariaDB), not %q.", s)
					if s == "postgresql" || s == "pg" {
						detail += " Did you mean \"postgres\"?"
					} else if s == "mariadb" {
						detail += " Use \"mysql\" for MariaDB."
					}
					l.errorf(a.Expr.Range(), "Invalid driver", "%s", detail)
				}
			}
		}
		if a, ok := content.Attributes["dsn"]; ok {
			if s, ok := l.evalString(a, ctx, "dsn"); ok {
				d.DSN = s
			}
		}
		if a, ok := content.Attributes["host"]; ok {
			t, diags := hcl.AbsTraversalForExpr(a.Expr)
			name, _, has := traversalName(t)
			if key, ok := setMember(t); ok && l.cfg.HostSets[name] != nil {
				name, t = key, t[:2]
			}
			if diags.HasErrors() || t.RootName() != "host" || !has || len(t) != 2 {
				l.errorf(a.Expr.Range(), "Invalid host", "host must be a host reference: host = host.NAME (or host.SET[\"KEY\"]).")
			} else if _, ok := l.cfg.Hosts[name]; !ok {
				l.undeclared(t, "host", name, l.cfg.HostOrder)
			} else {
				d.Host = name
			}
		}
		dbVals[name] = cty.ObjectVal(map[string]cty.Value{
			"name":   cty.StringVal(name),
			"driver": cty.StringVal(d.Driver),
		})
	}
	l.cfg.scope.static["database"] = cty.ObjectVal(dbVals)
}
