package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/upgrader-dev/upgrader/modules"
)

// runner runs the commands of a backup or restore: on a host over SSH, or on
// the controller for a database that has no host.
type runner interface {
	// where names the place for messages: `host "db"` or "the controller".
	where() string
	run(ctx context.Context, cmd modules.Command) (modules.Result, error)
	// probe runs a read-only command (plan).
	probe(ctx context.Context, cmd modules.Command) (modules.Result, error)
}

type hostRunner struct {
	name string
	r    modules.Reader
	t    modules.Target // nil at plan time
}

func (h hostRunner) where() string { return fmt.Sprintf("host %q", h.name) }

func (h hostRunner) run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	if h.t == nil {
		return modules.Result{}, modules.OnHost(h.name, errors.New("plan cannot change it"))
	}
	res, err := h.t.Run(ctx, cmd)
	return res, h.named(err)
}

// named makes sure an error names the host (the SSH transport's do).
func (h hostRunner) named(err error) error { return modules.OnHost(h.name, err) }

func (h hostRunner) probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	res, err := h.r.Probe(ctx, cmd)
	return res, h.named(err)
}

// localRunner runs commands with /bin/sh on the controller.
type localRunner struct{}

func (localRunner) where() string { return "the controller" }

func (localRunner) probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return localRunner{}.run(ctx, cmd)
}

func (localRunner) run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	if cmd.Sudo {
		return modules.Result{}, errors.New("sudo is not used on the controller")
	}
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd.Cmd)
	c.Env = os.Environ()
	for k, v := range cmd.Env {
		c.Env = append(c.Env, k+"="+v)
	}
	c.Stdin = cmd.Stdin
	var out, errb capped
	c.Stdout = &out
	if cmd.Stdout != nil {
		c.Stdout = cmd.Stdout
	}
	c.Stderr = &errb
	if cmd.Stderr != nil {
		c.Stderr = io.MultiWriter(&errb, cmd.Stderr)
	}
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	res := modules.Result{Stdout: out.Bytes(), Stderr: errb.Bytes(), Truncated: out.cut || errb.cut}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil && ee.Exited() {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return res, fmt.Errorf("the controller: %w", err)
	}
	return res, nil
}

// capped keeps the first modules.MaxOutput bytes written to it.
type capped struct {
	bytes.Buffer
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := modules.MaxOutput - c.Len(); room < len(p) {
		c.cut = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
