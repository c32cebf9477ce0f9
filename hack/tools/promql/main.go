// promql-check parses every alert and recording rule expression of the PrometheusRule objects
// in the given YAML files with Prometheus' own PromQL parser (what `promtool check rules` uses,
// without promtool's dependency tree), so the chart's alerts are known to load. It prints one
// line per rule and exits 1 on any error. `--version` prints the Prometheus module version.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

type rule struct {
	Alert  string `yaml:"alert"`
	Record string `yaml:"record"`
	Expr   string `yaml:"expr"`
	For    string `yaml:"for"`
}

type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		info, _ := debug.ReadBuildInfo()
		for _, d := range info.Deps {
			if d.Path == "github.com/prometheus/prometheus" {
				fmt.Println("promql-check (prometheus " + d.Version + ")")
			}
		}
		return
	}
	p := parser.NewParser(parser.Options{})
	rules, failed := 0, 0
	for _, f := range os.Args[1:] {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
				os.Exit(2)
			}
			if o.Kind != "PrometheusRule" {
				continue
			}
			for _, g := range o.Spec.Groups {
				for _, r := range g.Rules {
					rules++
					name := r.Alert + r.Record
					problem := ""
					if (r.Alert == "") == (r.Record == "") {
						problem = "a rule needs exactly one of alert and record"
					} else if _, err := p.ParseExpr(r.Expr); err != nil {
						problem = err.Error()
					} else if r.For != "" {
						if _, err := model.ParseDuration(r.For); err != nil {
							problem = "for: " + err.Error()
						}
					}
					if problem != "" {
						failed++
						fmt.Printf("FAIL %s %s/%s/%s: %s\n", f, o.Metadata.Name, g.Name, name, problem)
					} else {
						fmt.Printf("ok   %s %s/%s/%s\n", f, o.Metadata.Name, g.Name, name)
					}
				}
			}
		}
	}
	if rules == 0 {
		fmt.Fprintln(os.Stderr, "no PrometheusRule rules found")
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
