// Package testbrowser opens pages in a real headless Chromium (Debian's
// chromium package) for tests: it collects console errors and uncaught
// exceptions, evaluates expressions and saves screenshots. Tests only.
package testbrowser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Page is one file opened in its own headless browser.
type Page struct {
	t      testing.TB
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// Path finds the browser binary; "" when there is none.
func Path() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Open starts a headless Chromium and loads the local file path. It skips
// the test when there is no browser, except under CI=true, where it fails.
// The browser is stopped at the test's cleanup.
func Open(t testing.TB, path string) *Page {
	t.Helper()
	bin := Path()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium: run scripts/setup-debian.sh")
		}
		t.Skip("no chromium (apt-get install chromium)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // we run as root, where the sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	p := &Page{t: t, ctx: tctx}
	if err := chromedp.Listen(tctx, p.event); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(tctx, log.Enable, struct{}{}); err != nil {
		t.Fatalf("chromium: Log.enable: %v", err)
	}
	if _, err := chromedp.Call(tctx, runtime.Enable, struct{}{}); err != nil {
		t.Fatalf("chromium: Runtime.enable: %v", err)
	}
	if err := chromedp.Do(tctx, chromedp.Navigate("file://"+abs)); err != nil {
		t.Fatalf("chromium: opening %s: %v", abs, err)
	}
	return p
}

func (p *Page) event(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, fmt.Sprint(a.Description, string(a.Value)))
			}
			msg = "console.error: " + strings.Join(parts, " ")
		}
	case *runtime.EventExceptionThrown:
		msg = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError {
			msg = fmt.Sprintf("log %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	}
	if msg != "" {
		p.mu.Lock()
		p.errors = append(p.errors, msg)
		p.mu.Unlock()
	}
}

// Errors returns the console errors, uncaught exceptions and browser log
// errors (a blocked fetch, a CSP violation) seen so far.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Count returns how many elements match a CSS selector.
func (p *Page) Count(selector string) int {
	p.t.Helper()
	return Eval[int](p, fmt.Sprintf("document.querySelectorAll(%q).length", selector))
}

// LoadTime is the time from the start of navigation to the end of the
// load event (parse, style, layout of the whole page).
func (p *Page) LoadTime() time.Duration {
	p.t.Helper()
	ms := Eval[float64](p, `(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime; })()`)
	return time.Duration(ms * float64(time.Millisecond))
}

// Screenshot saves a PNG of the whole page in the artifacts directory
// (ArtifactsDir) and returns its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(ArtifactsDir(p.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactsDir is where tests leave files for people to look at:
// $UPGRADER_TEST_ARTIFACTS, or $TMPDIR/upgrader-test-artifacts.
func ArtifactsDir(t testing.TB) string {
	dir := os.Getenv("UPGRADER_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "upgrader-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
