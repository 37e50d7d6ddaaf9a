package backup

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/upgrader-dev/upgrader/modules"
	"github.com/upgrader-dev/upgrader/modules/modtest"
)

// localTarget is modtest's LocalHost (this machine; held to targettest)
// with a connection that can be cut mid-stream.
type localTarget struct {
	*modtest.LocalHost
	// cutAfter, when > 0, fails the stream after that many stdout bytes,
	// as a dropped connection would.
	cutAfter int64
}

func newLocalTarget(name string) *localTarget {
	return &localTarget{LocalHost: modtest.NewLocalHost(name)}
}

var _ modules.Target = (*localTarget)(nil)

func (l *localTarget) Probe(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	return l.Run(ctx, cmd)
}

func (l *localTarget) Run(ctx context.Context, cmd modules.Command) (modules.Result, error) {
	var cw *cutWriter
	if l.cutAfter > 0 && cmd.Stdout != nil {
		cw = &cutWriter{w: cmd.Stdout, left: l.cutAfter}
		cmd.Stdout = cw
	}
	cmd.Sudo = false // root already
	res, err := l.LocalHost.Run(ctx, cmd)
	if cw != nil && cw.cut {
		return res, fmt.Errorf("connection lost")
	}
	return res, err
}

type cutWriter struct {
	w    io.Writer
	left int64
	cut  bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) >= c.left {
		n, _ := c.w.Write(p[:c.left])
		c.left = 0
		c.cut = true
		return n, errors.New("connection lost")
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}
