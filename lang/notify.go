package lang

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Notify is a notify block: where a run's events go (SPEC "Notifications").
type Notify struct {
	Name    string
	URL     string // may be sensitive: never print it
	Format  string // "slack" or "json"
	Headers map[string]string
	Timeout time.Duration // per delivery attempt
	On      []string      // event names (NotifyEvents)
	Digest  time.Duration // 0: no digest of open observation windows
	// Sensitive: the URL or a header value came from a sensitive value.
	Sensitive bool
	DeclRange hcl.Range
}

// NotifyEvents are the events a notify block can ask for, with what they mean.
var NotifyEvents = map[string]string{
	"run_started":         "a run started (apply), resumed (resume) or is being rolled back (rollback)",
	"waiting":             "a gate waits for a decision",
	"approved":            "a gate was approved (by whom)",
	"rejected":            "a gate was rejected (by whom, why) or timed out with on_timeout = \"reject\"",
	"node_failed":         "any node failed (a step, a check after its retries, a window, a backup)",
	"observe_breach":      "an observation window failed (a bound breached, log lines matched, checks failed)",
	"rollback_started":    "undoing began (a phase, the whole run, an escalation)",
	"undo_failed":         "an undo still failed after its retries",
	"escalation":          "a phase's escalate checks ran after its rollback",
	"rollback_incomplete": "the run ended with something a human must undo",
	"run_finished":        "the run ended (done, failed, rolled_back, rollback_incomplete)",
	"digest":              "the latest metrics of every open observation window, every `digest` interval",
}

const defaultNotifyTimeout = 10 * time.Second

var notifySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "on"}, {Name: "digest"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "webhook"}},
}

var webhookSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "format"}, {Name: "headers"}, {Name: "timeout"}},
}

func (l *loader) decodeNotifies() {
	l.cfg.Notifies = map[string]*Notify{}
	l.inStatic = true
	defer func() { l.inStatic = false }()
	ctx := l.staticCtx()
	for _, b := range l.notifyBlocks {
		name := b.Labels[0]
		if prev, dup := l.cfg.Notifies[name]; dup {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate notify %q", name), "A notify %q was already declared at %s.", name, firstAt(prev.DeclRange))
			continue
		}
		n := &Notify{Name: name, Format: "json", Timeout: defaultNotifyTimeout, DeclRange: b.DefRange}
		l.cfg.Notifies[name] = n
		l.cfg.NotifyOrder = append(l.cfg.NotifyOrder, name)
		content := l.content(b.Body, notifySchema, "a notify block")
		if content == nil {
			continue
		}
		var hooks []*hcl.Block
		for _, cb := range content.Blocks {
			if cb.Type == "webhook" {
				hooks = append(hooks, cb)
			}
		}
		switch {
		case len(hooks) == 0:
			l.errorf(b.DefRange, "Notify without a webhook", "A notify block needs a webhook { url = ... } block: where to send the events.")
		case len(hooks) > 1:
			l.errorf(hooks[1].DefRange, "Duplicate webhook", "A notify block has one webhook; the first is at %s. Declare another notify block for another receiver.", firstAt(hooks[0].DefRange))
		}
		if len(hooks) > 0 {
			l.decodeWebhook(n, hooks[0], ctx)
		}
		if a, ok := content.Attributes["on"]; ok {
			v, diags := a.Expr.Value(ctx)
			l.diags = append(l.diags, scrubDiags(diags)...)
			if !diags.HasErrors() {
				v, _ = v.UnmarkDeep()
				if !v.CanIterateElements() || !v.IsWhollyKnown() {
					l.errorf(a.Expr.Range(), "Invalid on", "on is a list of event names: on = [\"waiting\", \"run_finished\"].")
				} else {
					for it := v.ElementIterator(); it.Next(); {
						_, e := it.Element()
						if e.Type() != cty.String || e.IsNull() {
							l.errorf(a.Expr.Range(), "Invalid on", "on is a list of event names (strings).")
							continue
						}
						ev := e.AsString()
						if _, ok := NotifyEvents[ev]; !ok {
							detail := fmt.Sprintf("%q is not an event upgrader notifies. Known events: %s.", ev, strings.Join(slices.Sorted(maps.Keys(NotifyEvents)), ", "))
							if s := suggest(ev, slices.Sorted(maps.Keys(NotifyEvents))); s != "" {
								detail = fmt.Sprintf("%q is not an event upgrader notifies. Did you mean %q? Known events: %s.", ev, s, strings.Join(slices.Sorted(maps.Keys(NotifyEvents)), ", "))
							}
							l.errorf(a.Expr.Range(), "Unknown event", "%s", detail)
							continue
						}
						n.On = append(n.On, ev)
					}
				}
			}
		} else {
			// What an on-call engineer wants to hear about when nobody chose.
			n.On = []string{"waiting", "rejected", "observe_breach", "rollback_started", "rollback_incomplete", "run_finished"}
		}
		if a, ok := content.Attributes["digest"]; ok {
			if d, ok := l.evalDuration(a, ctx, "digest"); ok {
				if d < time.Minute {
					l.errorf(a.Expr.Range(), "Invalid digest", "digest is how often the open windows' latest metrics are sent, at least \"1m\" (usually \"24h\"), not %s.", d)
				} else {
					n.Digest = d
					if !contains(n.On, "digest") {
						n.On = append(n.On, "digest")
					}
				}
			}
		}
	}
}

func (l *loader) decodeWebhook(n *Notify, b *hcl.Block, ctx *hcl.EvalContext) {
	content := l.content(b.Body, webhookSchema, "a webhook block")
	if content == nil {
		return
	}
	if a, ok := content.Attributes["url"]; ok {
		v, ok := l.eval(a, ctx, cty.String, "url")
		if ok {
			n.Sensitive = n.Sensitive || IsSensitive(v)
			raw, _ := v.UnmarkDeep()
			s := raw.AsString()
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				shown := s
				if IsSensitive(v) {
					shown = "(sensitive)"
				}
				l.errorf(a.Expr.Range(), "Invalid url", "url must be an http:// or https:// address, not %q.", shown)
			} else {
				n.URL = s
			}
		}
	}
	if a, ok := content.Attributes["format"]; ok {
		if s, ok := l.evalString(a, ctx, "format"); ok {
			switch s {
			case "slack", "json":
				n.Format = s
			default:
				l.errorf(a.Expr.Range(), "Invalid format", "format is \"slack\" (a chat message: {\"text\": ...}) or \"json\" (the -json event), not %q.", s)
			}
		}
	}
	if a, ok := content.Attributes["timeout"]; ok {
		if d, ok := l.evalDuration(a, ctx, "timeout"); ok {
			if d <= 0 || d > 5*time.Minute {
				l.errorf(a.Expr.Range(), "Invalid timeout", "timeout is how long one delivery may take, between \"1s\" and \"5m\", not %s.", d)
			} else {
				n.Timeout = d
			}
		}
	}
	if a, ok := content.Attributes["headers"]; ok {
		v, diags := a.Expr.Value(ctx)
		l.diags = append(l.diags, scrubDiags(diags)...)
		if diags.HasErrors() {
			return
		}
		if IsSensitive(v) {
			n.Sensitive = true
		}
		v, _ = v.UnmarkDeep()
		if !v.Type().IsObjectType() && !v.Type().IsMapType() || !v.IsWhollyKnown() || v.IsNull() {
			l.errorf(a.Expr.Range(), "Invalid headers", "headers is a map of header names to values: headers = { Authorization = var.token }.")
			return
		}
		n.Headers = map[string]string{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				l.errorf(a.Expr.Range(), "Invalid headers", "header %s must be a string.", k.AsString())
				continue
			}
			n.Headers[k.AsString()] = e.AsString()
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
