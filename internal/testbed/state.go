package testbed

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

type state struct {
	Dir            string  `json:"dir"`
	KeyFile        string  `json:"key_file"`
	KnownHostsFile string  `json:"known_hosts_file"`
	Hosts          []*Host `json:"hosts"`
}

// Save writes the bed's description to dir/testbed.json, for Load (cmd/testbed).
func (b *Testbed) Save(dir string) error {
	data, err := json.MarshalIndent(state{b.Dir, b.KeyFile, b.KnownHostsFile, b.hosts}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "testbed.json"), data, 0o644)
}

// Load returns a bed that Save described (to drive or Close it from another process).
func Load(dir string) (*Testbed, error) {
	data, err := os.ReadFile(filepath.Join(dir, "testbed.json"))
	if err != nil {
		return nil, fmt.Errorf("testbed: no running testbed in %s: %w", dir, err)
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", dir, err)
	}
	b := &Testbed{Dir: s.Dir, KeyFile: s.KeyFile, KnownHostsFile: s.KnownHostsFile, hosts: s.Hosts, persistent: true}
	for _, h := range b.hosts {
		h.bed = b
	}
	return b, nil
}
