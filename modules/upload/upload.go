// Package upload is the `upload` step action: a local file or directory put
// on a host atomically, planned from sha256 (+ new, ~ changed, = unchanged),
// undone by restoring the previous bytes and mode kept beside the target.
// Its file core is modules/internal/putfile, shared with template.
// It imports only modules, modules/internal/... and lang/diags.
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
	"github.com/upgrader-dev/upgrader/modules/internal/putfile"
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
	ds := putfile.ValidateCommon(cfg)
	if src := modules.GetString(cfg.Value, "source"); src != "" {
		if _, err := os.Stat(putfile.LocalPath(cfg, src)); err != nil {
			ds = append(ds, diags.At(*cfg.Range("source"), "Source not found",
				fmt.Sprintf("The local file or directory %q does not exist (relative paths start at %s).", src, cfg.Dir)))
		}
	}
	return ds
}

// localFiles lists the files to upload: the source file, or every regular
// file under the source directory mapped under the destination.
func localFiles(cfg *modules.Config) ([]putfile.File, error) {
	src := putfile.LocalPath(cfg, modules.GetString(cfg.Value, "source"))
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
		return []putfile.File{f}, err
	}
	var out []putfile.File
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

func localFile(src, dest string, fi os.FileInfo) (putfile.File, error) {
	// Readable now, not only when apply gets to it; hashing waits (File.Hash).
	f, err := os.Open(src)
	if err != nil {
		return putfile.File{}, err
	}
	f.Close()
	return putfile.File{Dest: dest, Size: fi.Size(), Mode: fi.Mode().Perm(),
		Hash: func() (string, error) { sum, _, err := fileSHA256(src, fi); return sum, err },
		Open: func() (io.ReadCloser, error) { return os.Open(src) }}, nil
}

func (*Upload) Plan(ctx context.Context, req *modules.Request) (*modules.Plan, error) {
	cfg := req.Config
	dest := modules.GetString(cfg.Value, "destination")
	if !putfile.Known(cfg, "source", "destination") {
		return &modules.Plan{Change: modules.Update, Summary: "upload (known after apply)", Undo: "previous content restored"}, nil
	}
	opt, err := putfile.OptionsOf(cfg)
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
	return putfile.PlanFiles(ctx, r, dest, files, opt)
}

func (*Upload) Apply(ctx context.Context, req *modules.Request) (*modules.Outcome, error) {
	opt, err := putfile.OptionsOf(req.Config)
	if err != nil {
		return nil, err
	}
	files, err := localFiles(req.Config)
	if err != nil {
		return nil, err
	}
	return putfile.ApplyFiles(ctx, req, files, opt)
}

func (*Upload) Undo(ctx context.Context, req *modules.Request, state json.RawMessage) error {
	return putfile.UndoFiles(ctx, req, state)
}

// Safe: an upload may be repeated on resume (it compares sha256 first).
func (*Upload) Safe(*modules.Config) bool { return true }
