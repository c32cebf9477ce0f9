// dashboard-check validates Grafana dashboard JSON files and the PromQL of their panels:
//
//   - the dashboard must declare the schemaVersion that the Grafana Foundation SDK pinned in
//     go.mod implements, and decode strictly (unknown or mistyped fields, missing required
//     ones, and panel options that do not match the panel type are errors) with the SDK's
//     generated types, then pass the SDK's Validate;
//   - every Prometheus target's expr, with Grafana's variables substituted, must parse with
//     Prometheus' own PromQL parser, and every vector selector must name its metric.
//
// It prints one line per query and, with --metrics, only the sorted metric names the queries
// read (for comparison with a live /metrics scrape). --require-vars=a,b fails unless those
// template variables exist. Exit 1 on any problem. `--version` prints the library versions.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
)

// Grafana's interval variables become a duration; any other variable outside a string literal
// (e.g. topk($top, ...)) becomes its current value, or 1. Inside string literals (label
// matchers such as namespace=~"$namespace") variables are left alone: any text parses there.
var variable = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?`)

func substitute(expr string, current map[string]string) string {
	var b strings.Builder
	inString := byte(0)
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case inString != 0:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(expr) {
				b.WriteByte(expr[i+1])
				i++
			} else if c == inString {
				inString = 0
			}
			i++
		case c == '"' || c == '\'' || c == '`':
			inString = c
			b.WriteByte(c)
			i++
		case c == '$':
			m := variable.FindStringSubmatchIndex(expr[i:])
			if m == nil || m[0] != 0 {
				b.WriteByte(c)
				i++
				continue
			}
			name := expr[i+m[2] : i+m[3]]
			switch {
			case strings.HasPrefix(name, "__"):
				b.WriteString("5m")
			case current[name] != "":
				b.WriteString(current[name])
			default:
				b.WriteString("1")
			}
			i += m[1]
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// failure is err unless it is an empty cog.BuildErrors: the SDK returns its (nil) error list
// as a non-nil error interface when nothing went wrong.
func failure(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		info, _ := debug.ReadBuildInfo()
		for _, d := range info.Deps {
			if d.Path == "github.com/prometheus/prometheus" || d.Path == "github.com/grafana/grafana-foundation-sdk/go" {
				fmt.Println(d.Path + " " + d.Version)
			}
		}
		return
	}
	args := os.Args[1:]
	metricsOnly := false
	var requiredVars []string
	for len(args) > 0 && strings.HasPrefix(args[0], "--") {
		switch {
		case args[0] == "--metrics":
			metricsOnly = true
		case strings.HasPrefix(args[0], "--require-vars="):
			requiredVars = strings.Split(strings.TrimPrefix(args[0], "--require-vars="), ",")
		default:
			fmt.Fprintln(os.Stderr, "unknown option "+args[0])
			os.Exit(2)
		}
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check [--metrics] [--require-vars=a,b] DASHBOARD.json...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	want := dashboard.NewDashboard().SchemaVersion
	p := parser.NewParser(parser.Options{})
	failed, queries := 0, 0
	metrics := map[string]bool{}
	problem := func(f, msg string) {
		failed++
		fmt.Printf("FAIL %s: %s\n", f, msg)
	}
	for _, f := range args {
		raw, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var declared struct {
			SchemaVersion uint16 `json:"schemaVersion"`
		}
		if err := json.Unmarshal(raw, &declared); err != nil {
			problem(f, "not JSON: "+err.Error())
			continue
		}
		if declared.SchemaVersion != want {
			problem(f, fmt.Sprintf("declares schemaVersion %d; this checker validates %d", declared.SchemaVersion, want))
			continue
		}
		// The strict decoder reports every schema violation, but it also drops what it decoded
		// (the SDK returns its empty error list as a non-nil error, so panels and targets are
		// skipped): decode strictly to check, then normally for Validate and the queries.
		var strict dashboard.Dashboard
		if err := failure(strict.UnmarshalJSONStrict(raw)); err != nil {
			problem(f, "strict decoding: "+err.Error())
			continue
		}
		var d dashboard.Dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			problem(f, "decoding: "+err.Error())
			continue
		}
		if err := failure(d.Validate()); err != nil {
			problem(f, "validation: "+err.Error())
			continue
		}
		current := map[string]string{}
		defined := map[string]bool{}
		for _, v := range d.Templating.List {
			defined[v.Name] = true
			if v.Current != nil && v.Current.Value.String != nil {
				current[v.Name] = *v.Current.Value.String
			}
		}
		for _, v := range requiredVars {
			if !defined[v] {
				problem(f, "no template variable "+v)
			}
		}
		var panels []dashboard.Panel
		for _, pr := range d.Panels {
			if pr.Panel != nil {
				panels = append(panels, *pr.Panel)
			}
			if pr.RowPanel != nil {
				panels = append(panels, pr.RowPanel.Panels...)
			}
		}
		if len(panels) == 0 {
			problem(f, "no panels")
			continue
		}
		for _, panel := range panels {
			title := ""
			if panel.Title != nil {
				title = *panel.Title
			}
			for i, t := range panel.Targets {
				q, ok := t.(*prometheus.Dataquery)
				if !ok {
					problem(f, fmt.Sprintf("panel %q target %d is not a Prometheus query (%T)", title, i, t))
					continue
				}
				queries++
				ref := ""
				if q.RefId != nil {
					ref = *q.RefId
				}
				expr, err := p.ParseExpr(substitute(q.Expr, current))
				if err != nil {
					problem(f, fmt.Sprintf("panel %q query %s: %v", title, ref, err))
					continue
				}
				bad := ""
				parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
					if vs, ok := n.(*parser.VectorSelector); ok {
						if vs.Name == "" {
							bad = "a selector without a metric name: " + vs.String()
						}
						metrics[vs.Name] = true
					}
					return nil
				})
				if bad != "" {
					problem(f, fmt.Sprintf("panel %q query %s: %s", title, ref, bad))
					continue
				}
				if !metricsOnly {
					fmt.Printf("ok   %s: panel %q query %s\n", f, title, ref)
				}
			}
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
	if queries == 0 {
		fmt.Fprintln(os.Stderr, "no Prometheus queries found")
		os.Exit(1)
	}
	if metricsOnly {
		names := make([]string, 0, len(metrics))
		for n := range metrics {
			if n != "" {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
	}
}
