// Package upload is the `upload` step action: a local file or directory put
// on a host atomically, planned from sha256 (+ new, ~ changed, = unchanged),
// undone by restoring the previous bytes and mode kept beside the target.
// Its file core (PlanFiles, ApplyFiles, UndoFiles) is shared with template.
// It imports only modules and lang/diags.
package upload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/upgrader-dev/upgrader/lang/diags"
	"github.com/upgrader-dev/upgrader/modules"
)

// Upload is the upload action.
type Upload struct{}

var (
	_ modules.Action        = (*Upload)(nil)
	_ modules.Undoer        = (*Upload)(nil)
	_ modules.Validator     = (*Upload)(nil)
	_ modules.Repeatable    = (*Upload)(nil)
	_ modules.Describer     = (*Upload)(nil)
	_ modules.UndoDescriber = (*Upload)(nil)
)

func (*Upload) Kind() string { return "upload" }

// Describe: the offline plan shows these arguments.
func (*Upload) Describe(*modules.Config) modules.Description {
	return modules.Description{Attrs: []string{"source", "destination"}}
}

// UndoText is what the plan says undoes it without a rollback block.
func (*Upload) UndoText() string { return "previous content restored" }

func (*Upload) Spec() hcldec.Spec {
	return &hcldec.ObjectSpec{
		"source":      &hcldec.AttrSpec{Name: "source", Type: cty.String, Required: true},
		"destination": &hcldec.AttrSpec{Name: "destination", Type: cty.String, Required: true},
		"mode":        &hcldec.AttrSpec{Name: "mode", Type: cty.String},
		"owner":       &hcldec.AttrSpec{Name: "owner", Type: cty.String},
		"group":       &hcldec.AttrSpec{Name: "group", Type: cty.String},
		"sudo":        &hcldec.AttrSpec{Name: "sudo", Type: cty.Bool},
	}
}

// Validate reports a missing local source, a relative destination, a bad mode
// and owner/group without sudo.
func (*Upload) Validate(cfg *modules.Config) hcl.Diagnostics {
	ds := ValidateCommon(cfg)
	if src := modules.GetString(cfg.Value, "source"); src != "" {
		if _, err := os.Stat(LocalPath(cfg, src)); err != nil {
			ds = append(ds, diags.At(*cfg.Range("source"), "Source not found",
				fmt.Sprintf("The local file or directory %q does not exist (relative paths start at %s).", src, cfg.Dir)))
		}
	}
	return ds
}

// ValidateCommon checks destination, mode, owner and group (upload and template).
func ValidateCommon(cfg *modules.Config) hcl.Diagnostics {
	var ds hcl.Diagnostics
	v := cfg.Value
	if d := modules.GetString(v, "destination"); d != "" && !path.IsAbs(d) {
		ds = append(ds, diags.At(*cfg.Range("destination"), "Relative destination path",
			fmt.Sprintf("destination = %q must be an absolute path on the host, like /etc/app/app.conf.", d)))
	} else if modules.Get(v, "destination").IsKnown() && d == "" {
		ds = append(ds, diags.At(*cfg.Range("destination"), "Empty destination", "destination must be an absolute path on the host."))
	}
	if m := modules.GetString(v, "mode"); m != "" {
		if _, err := ParseMode(m); err != nil {
			ds = append(ds, diags.At(*cfg.Range("mode"), "Invalid mode", err.Error()))
		}
	}
	if !modules.GetBool(v, "sudo", false) {
		for _, a := range []string{"owner", "group"} {
			if modules.GetString(v, a) != "" {
				ds = append(ds, diags.At(*cfg.Range(a), "Changing "+a+" needs sudo",
					"Set sudo = true in this block: only root may give a file to another "+a+"."))
			}
		}
	}
	return ds
}

// LocalPath resolves a local path against the configuration directory.
func LocalPath(cfg *modules.Config, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cfg.Dir, p)
}

// OptionsOf reads mode, owner, group and sudo.
func OptionsOf(cfg *modules.Config) (Options, error) {
	v := cfg.Value
	o := Options{Owner: modules.GetString(v, "owner"), Group: modules.GetString(v, "group"), Sudo: modules.GetBool(v, "sudo", false)}
	if m := modules.GetString(v, "mode"); m != "" {
		var err error
		if o.Mode, err = ParseMode(m); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Known reports whether the attributes are known (not "known after" a node).
func Known(cfg *modules.Config, attrs ...string) bool {
	for _, a := range attrs {
		if !modules.Get(cfg.Value, a).IsWhollyKnown() {
			return false
		}
	}
	return true
}

// localFiles lists the files to upload: the source file, or every regular
// file under the source directory mapped under the destination.
func localFiles(cfg *modules.Config) ([]File, error) {
	src := LocalPath(cfg, modules.GetString(cfg.Value, "source"))
	rawDest := modules.GetString(cfg.Value, "destination")
	dest := path.Clean(rawDest)
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if strings.HasSuffix(rawDest, "/") {
			// "/etc/app/" names the directory the file goes into.
			dest = path.Join(dest, filepath.Base(src))
		}
		f, err := localFile(src, dest, fi)
		return []File{f}, err
	}
	var out []File
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := localFile(p, path.Join(dest, filepath.ToSlash(rel)), info)
		out = append(out, f)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Dest < out[j].Dest })
	return out, err
}

func localFile(src, dest string, fi os.FileInfo) (File, error) {
	// Readable now, not only when apply gets to it; hashing waits (File.Hash).
	f, err := os.Open(src)
	if err != nil {
		return File{}, err
	}
	f.Close()
	return File{Dest: dest, Size: fi.Size(), Mode: fi.Mode().Perm(),
		Hash: func() (string, error) { sum, _, err := fileSHA256(src, fi); return sum, err },
		Open: func() (io.ReadCloser, error) { return os.Open(src) }}, nil
}

func (*Upload) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	cfg := req.Config
	dest := modules.GetString(cfg.Value, "destination")
	if !Known(cfg, "source", "destination") {
		return &modules.Plan{Change: modules.Update, Summary: "upload (known after apply)", Undo: "previous content restored"}, nil
	}
	opt, err := OptionsOf(cfg)
	if err != nil {
		return nil, err
	}
	files, err := localFiles(cfg)
	if err != nil {
		return nil, err
	}
	r, err := req.Env.Reader(req.Host)
	if err != nil {
		return nil, err
	}
	return PlanFiles(ctx, r, dest, files, opt)
}

func (*Upload) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	opt, err := OptionsOf(req.Config)
	if err != nil {
		return nil, err
	}
	files, err := localFiles(req.Config)
	if err != nil {
		return nil, err
	}
	return ApplyFiles(ctx, req, files, opt)
}

func (*Upload) Undo(ctx context.Context, req *modules.Request, state json.RawMessage) error {
	return UndoFiles(ctx, req, state)
}

// Safe: an upload may be repeated on resume (it compares sha256 first).
func (*Upload) Safe(*modules.Config) bool { return true }
