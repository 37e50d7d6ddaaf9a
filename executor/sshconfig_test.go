package executor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/executor/ssh"
	"github.com/upgrader-dev/upgrader/internal/testbed"
	"github.com/upgrader-dev/upgrader/lang"
	"github.com/upgrader-dev/upgrader/modules"
)

// A host given as an ssh_config alias behind a two-hop ProxyJump chain: the
// target is reachable only from the second hop, which is reachable only from
// the first (private links off the shared bridge). The settings come from
// the file as an operator writes it; the HCL block wins where it speaks;
// the plan says where each setting came from.
func TestSSHConfig_twoHopProxyJump(t *testing.T) {
	bed := testbed.New(t, "hop1", "hop2", "db")
	hop1, hop2, db := bed.Host("hop1"), bed.Host("hop2"), bed.Host("db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := hop1.LinkPrivate(ctx, hop2); err != nil {
		t.Fatal(err)
	}
	if err := hop2.LinkPrivate(ctx, db); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sshConfig := fmt.Sprintf(`# ~/.ssh/config as operators write it
Host bastion
    HostName %s

Host inner
    HostName %s

Host prod-db
    HostName %s
    ProxyJump bastion,inner
    IdentitiesOnly yes

Match host 203.0.113.*
    Port 22

Host *
    User deploy
    IdentityFile %s
    UserKnownHostsFile %s
    ConnectTimeout 7
`, hop1.Address, hop2.PrivateAddress(), db.PrivateAddress(), bed.KeyFile, bed.KnownHostsFile)
	if err := os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(sshConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := `connection {
  ssh_config = "ssh_config"
}

host "db" {
  address = "prod-db"
  connection {
    timeout = "9s"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := realRegistry()
	cfg, ds := lang.Load(dir, Schemas(reg), lang.Options{Env: map[string]string{}})
	if ds.HasErrors() {
		t.Fatal(ds.Error())
	}
	h := cfg.Hosts["db"]
	if h.Address != db.PrivateAddress() || h.Conn.User != "deploy" || h.Conn.Timeout != 9*time.Second || len(h.Conn.Jumps) != 2 {
		t.Fatalf("resolved %s %+v", h.Address, h.Conn)
	}

	// Only the second hop reaches the target; the first hop (which has no
	// default route, like every test host) does not. The controller is not
	// tried: its default route would send the packets off this machine.
	reach := `timeout 3 bash -c 'echo > /dev/tcp/` + db.PrivateAddress() + `/22' 2>&1`
	if out, err := hop1.Exec(ctx, reach); err == nil {
		t.Fatalf("the first hop reaches the target: %s", out)
	}
	if out, err := hop2.Exec(ctx, reach); err != nil {
		t.Fatalf("the second hop does not reach the target: %s %v", out, err)
	}

	pool := ssh.NewPool(ssh.Options{})
	defer pool.Close()
	tgt, err := pool.Target(ctx, "db", SSHConfig(h))
	if err != nil {
		t.Fatal(err)
	}
	r, err := tgt.Run(ctx, modules.Command{Cmd: "echo $SSH_CONNECTION"})
	// The target sees the connection coming from the second hop's private link.
	if err != nil || !strings.HasPrefix(string(r.Stdout), hop2.PrivateAddress()+" ") {
		t.Fatalf("%q %v", r.Stdout, err)
	}

	hosts := planHosts(cfg)
	var out bytes.Buffer
	for _, ph := range hosts {
		fmt.Fprintln(&out, ph.Name, ph.Target, strings.Join(ph.Via, " -> "))
		for _, s := range ph.Settings {
			fmt.Fprintln(&out, "  "+s)
		}
	}
	want := fmt.Sprintf(`db deploy@%[1]s:22 deploy@%[2]s:22 -> deploy@%[3]s:22
  hostname %[1]s (ssh_config line 9)
  user deploy (ssh_config line 17)
  port 22 (ssh_config line 14)
  identity_file %[4]s (ssh_config line 18)
  known_hosts_file %[5]s (ssh_config line 19)
  proxy_jump deploy@%[2]s:22 -> deploy@%[3]s:22 (ssh_config line 10)
  timeout 9s (main.hcl:8)
  identities_only yes (ssh_config line 11)
`, db.PrivateAddress(), hop1.Address, hop2.PrivateAddress(), bed.KeyFile, bed.KnownHostsFile)
	if out.String() != want {
		t.Errorf("plan hosts:\n%s\nwant:\n%s", out.String(), want)
	}
}
