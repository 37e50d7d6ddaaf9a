package lang

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

var metricSourceSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "prometheus"}},
}

var prometheusSourceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "headers"}, {Name: "timeout"}},
}

// defaultMetricTimeout bounds one query when the block gives no timeout: a
// window must keep its interval even when the server hangs.
const defaultMetricTimeout = 10 * time.Second

// decodeMetricSources decodes the metric_source blocks. They stand beside
// hosts and databases: known before the run starts, in the static scope as
// metric_source.NAME = {name, type}.
func (l *loader) decodeMetricSources() {
	l.inStatic = true
	defer func() { l.inStatic = false }()
	ctx := l.staticCtx()
	vals := map[string]cty.Value{}
	for _, b := range l.msBlocks {
		name := b.Labels[0]
		if prev, dup := l.cfg.MetricSources[name]; dup {
			l.errorf(b.DefRange, fmt.Sprintf("Duplicate metric_source %q", name), "A metric_source %q was already declared at %s.", name, firstAt(prev.DeclRange))
			continue
		}
		m := &MetricSource{Name: name, Timeout: defaultMetricTimeout, DeclRange: b.DefRange}
		l.cfg.MetricSources[name] = m
		content := l.content(b.Body, metricSourceSchema, "a metric_source block")
		if sb, ok := b.Body.(*hclsyntax.Body); len(content.Blocks) == 0 && (!ok || len(sb.Blocks) == 0) {
			l.errorf(b.DefRange, "Missing source kind", "A metric_source block holds one block saying what it is: prometheus { url = \"http://prometheus:9090\" }.")
		}
		for i, kb := range content.Blocks {
			if i > 0 {
				l.errorf(kb.DefRange, "Duplicate source kind", "A metric_source holds one source; the first is at %s. Declare another metric_source for another server.", firstAt(content.Blocks[0].DefRange))
				continue
			}
			m.Kind = kb.Type
			l.decodePrometheusSource(kb, m, ctx)
		}
		vals[name] = cty.ObjectVal(map[string]cty.Value{
			"name": cty.StringVal(name),
			"type": cty.StringVal(m.Kind),
		})
	}
	l.cfg.scope.static["metric_source"] = cty.ObjectVal(vals)
}

func (l *loader) decodePrometheusSource(b *hcl.Block, m *MetricSource, ctx *hcl.EvalContext) {
	content := l.content(b.Body, prometheusSourceSchema, "a prometheus block")
	if a, ok := content.Attributes["url"]; ok {
		if v, ok := l.eval(a, ctx, cty.String, "url"); ok {
			m.SensitiveURL = IsSensitive(v)
			v, _ = v.UnmarkDeep()
			m.URL = v.AsString()
			shown := fmt.Sprintf("%q", m.URL)
			if m.SensitiveURL {
				shown = "(sensitive)"
			}
			u, err := url.Parse(m.URL)
			switch {
			case err != nil || u.Host == "":
				l.errorf(a.Expr.Range(), "Invalid url", "url must be the Prometheus server's base URL, like \"http://prometheus:9090\", not %s.", shown)
			case u.Scheme != "http" && u.Scheme != "https":
				l.errorf(a.Expr.Range(), "Invalid url", "url must start with http:// or https://, not %s.", shown)
			case strings.Contains(u.Path, "/api/v1"):
				l.errorf(a.Expr.Range(), "Invalid url", "url is the server's base URL, without /api/v1/... (upgrader adds that): %s.", shown)
			}
		}
	}
	if a, ok := content.Attributes["headers"]; ok {
		if v, ok := l.eval(a, ctx, cty.Map(cty.String), "headers"); ok {
			v, _ = v.UnmarkDeep()
			m.Headers = map[string]string{}
			for k, e := range v.AsValueMap() {
				if e.IsNull() {
					continue
				}
				if strings.ContainsAny(k, " :\r\n") || k == "" {
					l.errorf(a.Expr.Range(), "Invalid header name", "%q is not an HTTP header name.", k)
					continue
				}
				if strings.ContainsAny(e.AsString(), "\r\n") {
					l.errorf(a.Expr.Range(), "Invalid header value", "The value of header %q holds a line break.", k)
					continue
				}
				m.Headers[k] = e.AsString()
			}
		}
	}
	if a, ok := content.Attributes["timeout"]; ok {
		if d, ok := l.evalDuration(a, ctx, "timeout"); ok {
			if d == 0 {
				l.errorf(a.Expr.Range(), "Invalid timeout", "timeout must be greater than zero.")
			} else {
				m.Timeout = d
			}
		}
	}
}
