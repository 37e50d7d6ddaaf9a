package executor

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// This file keeps sensitive values out of everything a run shows or
// records: events, the journal, plans, saved plans.

// Redaction decides by marks where a value is shown (FormatValue,
// lang.Redact); text that modules produced from raw values (errors, command
// output, messages, undo state) is scrubbed with the configuration's
// modules.Secrets: every sensitive variable and local, and every sensitive
// string of a body decoded for a module (decode adds them), in all the forms
// Secrets knows. The journal and the observer get everything through
// redactJSON and session.emit, so no path around them exists.

// secretSets holds one modules.Secrets per configuration, dropped with it.
var secretSets sync.Map // weak.Pointer[lang.Config] -> *modules.Secrets

// secretsOf returns cfg's set of sensitive strings (nil for a nil cfg).
func secretsOf(cfg *lang.Config) *modules.Secrets {
	if cfg == nil {
		return nil
	}
	key := weak.Make(cfg)
	if s, ok := secretSets.Load(key); ok {
		return s.(*modules.Secrets)
	}
	s := modules.NewSecrets()
	for _, v := range cfg.Variables {
		val := v.Value
		if v.Sensitive {
			val = val.Mark(lang.SensitiveMark)
		}
		s.Add(lang.SensitiveStrings(val)...)
	}
	for _, v := range cfg.Locals {
		s.Add(lang.SensitiveStrings(v)...)
	}
	got, loaded := secretSets.LoadOrStore(key, s)
	if !loaded {
		runtime.AddCleanup(cfg, func(k weak.Pointer[lang.Config]) { secretSets.Delete(k) }, key)
	}
	return got.(*modules.Secrets)
}

// redact hides sensitive strings in any text shown or journaled.
func (r *run) redact(s string) string { return redactWith(r.cfg, s) }

func redactWith(cfg *lang.Config, s string) string { return secretsOf(cfg).Redact(s) }

// redactJSON scrubs every string value (not the keys: a secret that happens
// to be a field name must not change the structure) of a JSON document.
func redactJSON(sec *modules.Secrets, b []byte) []byte {
	if sec.Empty() || len(b) == 0 {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return []byte(strconv.Quote(sec.Redact(string(b))))
	}
	// Undo state stays as the module wrote it: scrubbing it would break the
	// undo (a path that happens to hold a secret's text); modules record
	// what re-evaluation needs, never a secret (DESIGN.md).
	var state any
	if m, ok := v.(map[string]any); ok {
		state = m["state"]
		delete(m, "state")
	}
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case string:
			return sec.Redact(x)
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return x
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	v = walk(v)
	if m, ok := v.(map[string]any); ok && state != nil {
		m["state"] = state
	}
	if enc.Encode(v) != nil {
		return b
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// publicVars renders non-sensitive variable values for the journal.
func publicVars(cfg *lang.Config) map[string]string {
	out := map[string]string{}
	for name, v := range cfg.Variables {
		if v.Sensitive || isSensitive(v.Value) {
			continue
		}
		out[name] = FormatValue(v.Value)
	}
	return out
}

// publicVarArgs drops -var arguments of sensitive variables.
func publicVarArgs(cfg *lang.Config, args []string) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v := cfg.Variables[strings.TrimSpace(name)]; v != nil && v.Sensitive {
			continue
		}
		out = append(out, a)
	}
	return out
}

// SensitiveDigests returns the keyed digests of cfg's sensitive variables
// (lang.Config.SensitiveDigests) under the state directory's key, which is
// made on first use; nil when there are no sensitive values.
func SensitiveDigests(cfg *lang.Config, stateDir string) (map[string]string, error) {
	has := false
	for _, v := range cfg.Variables {
		has = has || v.Sensitive
	}
	if !has || stateDir == "" {
		return nil, nil
	}
	key, err := digestKey(stateDir)
	if err != nil {
		return nil, err
	}
	return cfg.SensitiveDigests(key), nil
}

// digestKey reads STATE/secret.key, making it (32 random bytes, 0600) when
// it does not exist: written under a temporary name and linked into place,
// so two runs starting at once end with one key and nobody reads half of one.
func digestKey(stateDir string) ([]byte, error) {
	path := filepath.Join(stateDir, "secret.key")
	if key, err := os.ReadFile(path); err == nil && len(key) == 32 {
		return key, nil
	} else if err == nil {
		return nil, fmt.Errorf("%s is damaged (%d bytes, not 32): remove it (saved plans and unfinished runs then need their sensitive values given again and -force)", path, len(key))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(stateDir, ".secret.key.*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return digestKeyRead(path)
}

func digestKeyRead(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil && len(key) != 32 {
		err = fmt.Errorf("%s is damaged (%d bytes, not 32)", path, len(key))
	}
	return key, err
}
