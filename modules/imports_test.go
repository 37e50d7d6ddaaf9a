package modules_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/upgrader-dev/upgrader/"

// importRules are docs/DESIGN.md's import diagram: for each package (by
// prefix of its path in the module), the packages of this module it may
// import. The first matching rule applies.
var importRules = []struct {
	pkg   string // "modules/" matches modules/X and below; "modules" only itself
	allow []string
	deny  []string // used when allow is nil: everything but these
}{
	{pkg: "lang/diags", allow: []string{}},
	{pkg: "lang/langtest", allow: []string{}},
	{pkg: "lang", allow: []string{"lang/diags", "internal/sshconfig"}},
	{pkg: "modules", allow: []string{"lang/diags"}},
	{pkg: "modules/modtest", allow: []string{"modules", "lang/langtest"}},
	// Kinds and the code they share: never another kind, the executor, lang or cmd.
	{pkg: "modules/", allow: []string{"modules", "modules/internal/", "lang/diags"}},
	{pkg: "executor", deny: []string{"cmd/", "modules/", "report"}},
	// executor/X may import executor/Y (journal, ssh, dag), not the executor.
	{pkg: "executor/", deny: []string{"cmd/", "executor", "modules/", "report"}},
	{pkg: "report", deny: []string{"cmd/"}},
	{pkg: "internal/", deny: []string{"cmd/", "executor", "lang", "report"}},
}

// matches says whether path p (in the module, without the module prefix)
// matches pattern: "x/" is everything under x, "x" only x itself.
func matches(p, pattern string) bool {
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(p, pattern)
	}
	return p == pattern
}

type pkgImports struct {
	ImportPath string
	Imports    []string
}

// violations lists the forbidden imports among pkgs.
func violations(pkgs []pkgImports) []string {
	var out []string
	for _, p := range pkgs {
		name, ok := strings.CutPrefix(p.ImportPath, mod)
		if !ok {
			continue
		}
		for _, r := range importRules {
			if !matches(name, r.pkg) {
				continue
			}
			for _, imp := range p.Imports {
				dep, ok := strings.CutPrefix(imp, mod)
				if !ok {
					continue // standard library or a dependency
				}
				if strings.HasPrefix(dep, "cmd/") && !strings.HasPrefix(name, "cmd/") {
					out = append(out, name+" imports "+dep+" (nothing imports cmd)")
					continue
				}
				if r.allow != nil {
					ok := false
					for _, a := range r.allow {
						ok = ok || matches(dep, a)
					}
					if !ok {
						out = append(out, name+" imports "+dep+" (may import only "+strings.Join(r.allow, ", ")+")")
					}
					continue
				}
				for _, d := range r.deny {
					if matches(dep, d) {
						out = append(out, name+" imports "+dep+" (must not import "+d+")")
					}
				}
			}
			break
		}
	}
	return out
}

// TestImports_followDesign checks every package of the module against the
// import rules of docs/DESIGN.md ("Packages and the direction of imports").
func TestImports_followDesign(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-json", mod+"...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var pkgs []pkgImports
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkgImports
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// The rules catch what they must: a kind importing another kind, a kind
// importing lang, modules importing a kind, the executor importing a kind,
// anything importing cmd; and let the allowed imports through.
func TestImports_rulesCatchForbidden(t *testing.T) {
	p := func(name string, imports ...string) pkgImports {
		for i := range imports {
			imports[i] = mod + imports[i]
		}
		return pkgImports{ImportPath: mod + name, Imports: append(imports, "fmt", "github.com/hashicorp/hcl/v2")}
	}
	bad := []pkgImports{
		p("modules/template", "modules/upload"),
		p("modules/run", "lang"),
		p("modules/internal/putfile", "executor"),
		p("modules", "modules/run"),
		p("executor", "modules/upload"),
		p("executor/journal", "executor"),
		p("lang", "modules"),
		p("report", "cmd/upgrader/views"),
	}
	for _, b := range bad {
		if v := violations([]pkgImports{b}); len(v) != 1 {
			t.Errorf("%s importing %v: got %q, want one violation", b.ImportPath, b.Imports[0], v)
		}
	}
	good := []pkgImports{
		p("modules/template", "modules", "modules/internal/putfile", "lang/diags"),
		p("modules/internal/dbconn", "modules"),
		p("modules", "lang/diags"),
		p("executor", "executor/ssh", "executor/journal", "lang", "modules"),
		p("cmd/upgrader", "cmd/upgrader/views", "modules/upload", "executor"),
		p("modules/modtest", "modules", "lang/langtest"),
	}
	for _, g := range good {
		if v := violations([]pkgImports{g}); len(v) != 0 {
			t.Errorf("%s: unexpected %q", g.ImportPath, v)
		}
	}
}
