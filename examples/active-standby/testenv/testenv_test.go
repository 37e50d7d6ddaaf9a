package testenv

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgrader-dev/upgrader/internal/testbed"
)

// TestStart_infrastructure proves the world the example runs in, without
// upgrader: PostgreSQL on host db answers the app's DSN from another host,
// and nginx on lb runs with the example's templates (rendered by hand here)
// and survives a reload.
func TestStart_infrastructure(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	work := t.TempDir()
	env, err := Start(ctx, Options{ExampleDir: "..", Dist: filepath.Join(work, "dist"), WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	out, err := env.Host("primary").Exec(ctx, "psql '"+env.ProdDSN+"' -tAc 'select current_database(), version from schema_migrations'")
	if err != nil || strings.TrimSpace(out) != "prod|1" {
		t.Fatalf("psql from primary: %q %v", out, err)
	}
	out, err = env.Host("test").Exec(ctx, "psql '"+env.TestDSN+"' -tAc 'select count(stock), version from items, schema_migrations group by version'")
	if err != nil || strings.TrimSpace(out) != "3|2" {
		t.Fatalf("psql from test: %q %v", out, err)
	}
	for _, f := range []string{"upgrade.hcl", "variables.hcl", "hosts.hcl", "bootstrap/hosts.hcl", "bootstrap/install.hcl", "templates/nginx.conf.tmpl"} {
		if _, err := os.Stat(filepath.Join(env.Dir, f)); err != nil {
			t.Error(err)
		}
	}

	lb := env.Host("lb")
	nginxConf, _ := os.ReadFile("../templates/nginx.conf.tmpl")
	upstream, _ := os.ReadFile("../templates/upstream.conf.tmpl")
	render := strings.NewReplacer("${lb_port}", "80", "${backend}", env.Host("primary").Address, "${port}", "8080", "${role}", "primary")
	// The host's /tmp is its own: hand the files over on the command line.
	write := "echo " + base64.StdEncoding.EncodeToString([]byte(render.Replace(string(nginxConf)))) + " | base64 -d > /etc/app/nginx.conf && " +
		"echo " + base64.StdEncoding.EncodeToString([]byte(render.Replace(string(upstream)))) + " | base64 -d > /etc/app/upstream.conf"
	if _, err := lb.Exec(ctx, write+" && nginx -c /etc/app/nginx.conf -t -q && nginx -c /etc/app/nginx.conf && sleep 0.2 && nginx -c /etc/app/nginx.conf -s reload"); err != nil {
		t.Fatal(err)
	}
	// No app runs on primary yet: nginx answers 502 and names the upstream.
	out, err = lb.Exec(ctx, "curl -s -o /dev/null -D - http://127.0.0.1:80/health")
	if err != nil || !strings.Contains(out, "502") || !strings.Contains(strings.ToLower(out), "x-upstream: "+env.Host("primary").Address+":8080") {
		t.Fatalf("nginx on lb: %q %v", out, err)
	}
}
