// gitops-health rates CloudQuota objects with the health engines that GitOps tools really use,
// so the shipped health definitions (deploy/gitops/) are tested against the engines and not
// against a re-implementation of them:
//
//   - argocd:  the Lua health script in gopher-lua, set up the way Argo CD runs an argocd-cm
//     health customization (util/lua: no standard libraries unless useOpenLibs, then
//     package, base, table and an os table with only time and date; the object as the
//     global `obj`; the returned table read as {status, message}; 1 s time limit).
//   - kstatus: status.Compute from sigs.k8s.io/cli-utils (Helm 4's wait, kpt, the kstatus
//     default of Flux for kinds without healthCheckExprs).
//   - flux:    the Kustomization's healthCheckExprs through Flux's own CEL status reader
//     (github.com/fluxcd/pkg/runtime/cel), exactly as kustomize-controller builds it.
//
// Usage:
//
//	gitops-health --version
//	gitops-health check   --argocd-cm CM.yaml --kustomization KS.yaml [FILE|-]...
//	gitops-health argocd  (--argocd-cm CM.yaml | --script health.lua) [FILE|-]...
//	gitops-health kstatus [FILE|-]...
//	gitops-health flux    --kustomization KS.yaml [FILE|-]...
//	gitops-health argocd-cm-script CM.yaml     (prints the embedded Lua script)
//
// Each input (a file, or stdin for "-" or no file) holds one case {"name", "object",
// "expect"}, a JSON list of cases, or a bare CloudQuota object. `expect` is
// {"argocd": "Healthy", "argocdMessage": ["substring", ...], "kstatus": "Current",
// "flux": "Current"}. The output is a JSON list with every case's verdict per engine and, for
// cases with `expect`, whether each engine matched (--format table: one line per case). Exit 0: every expectation met (or none
// given); 1: a mismatch (or an expectation missing for an engine that ran); 2: bad input.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	fluxkustomize "github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	luajson "layeh.com/gopher-json"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// The argocd-cm keys Argo CD reads for a group/kind (dots kept, "/" becomes "_").
const (
	cmHealthKey   = "resource.customizations.health.cloudquota.io_CloudQuota"
	cmOpenLibsKey = "resource.customizations.useOpenLibs.cloudquota.io_CloudQuota"
)

var cloudQuotaGK = schema.GroupKind{Group: "cloudquota.io", Kind: "CloudQuota"}

type expect struct {
	ArgoCD        string   `json:"argocd,omitempty"`
	ArgoCDMessage []string `json:"argocdMessage,omitempty"`
	KStatus       string   `json:"kstatus,omitempty"`
	Flux          string   `json:"flux,omitempty"`
}

type testCase struct {
	Name   string          `json:"name"`
	Object json.RawMessage `json:"object"`
	Expect *expect         `json:"expect,omitempty"`
}

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

type result struct {
	Name       string             `json:"name"`
	Verdicts   map[string]verdict `json:"verdicts"`
	OK         *bool              `json:"ok,omitempty"`
	Mismatches []string           `json:"mismatches,omitempty"`
}

type engine struct {
	name string
	rate func(u *unstructured.Unstructured) verdict
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

func run(args []string, out io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: gitops-health (check|argocd|kstatus|flux|argocd-cm-script|--version) ...")
		return 2
	}
	if args[0] == "--version" {
		fmt.Fprintln(out, version())
		return 0
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	cmPath := fs.String("argocd-cm", "", "argocd-cm ConfigMap YAML holding the health script")
	scriptPath := fs.String("script", "", "Lua health script file")
	ksPath := fs.String("kustomization", "", "Flux Kustomization YAML holding healthCheckExprs")
	format := fs.String("format", "json", "output: json, or table (one line per case, for people)")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if cmd == "argocd-cm-script" {
		if fs.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: gitops-health argocd-cm-script CM.yaml")
			return 2
		}
		script, _, err := scriptFromConfigMap(fs.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprint(out, script)
		return 0
	}

	var engines []engine
	var err error
	add := func(name string, build func() (func(*unstructured.Unstructured) verdict, error)) {
		if err != nil {
			return
		}
		var f func(*unstructured.Unstructured) verdict
		if f, err = build(); err == nil {
			engines = append(engines, engine{name, f})
		}
	}
	argo := func() (func(*unstructured.Unstructured) verdict, error) { return argoEngine(*cmPath, *scriptPath) }
	flux := func() (func(*unstructured.Unstructured) verdict, error) { return fluxEngine(*ksPath) }
	kst := func() (func(*unstructured.Unstructured) verdict, error) { return kstatusRate, nil }
	switch cmd {
	case "check":
		add("argocd", argo)
		add("kstatus", kst)
		add("flux", flux)
	case "argocd":
		add("argocd", argo)
	case "kstatus":
		add("kstatus", kst)
	case "flux":
		add("flux", flux)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", cmd)
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	inputs := fs.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var cases []testCase
	for _, in := range inputs {
		cs, err := readCases(in)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", in, err)
			return 2
		}
		cases = append(cases, cs...)
	}

	results := make([]result, 0, len(cases))
	failed := false
	for _, c := range cases {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(c.Object); err != nil {
			fmt.Fprintf(os.Stderr, "case %q: object: %v\n", c.Name, err)
			return 2
		}
		r := result{Name: c.Name, Verdicts: map[string]verdict{}}
		for _, e := range engines {
			// Each engine gets its own copy: none may see another's mutations.
			r.Verdicts[e.name] = e.rate(u.DeepCopy())
		}
		if c.Expect != nil {
			r.Mismatches = compare(c.Expect, r.Verdicts)
			ok := len(r.Mismatches) == 0
			r.OK = &ok
			failed = failed || !ok
		}
		results = append(results, r)
	}
	switch *format {
	case "table":
		printTable(out, engines, results)
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown --format %q\n", *format)
		return 2
	}
	if failed {
		return 1
	}
	return 0
}

func printTable(out io.Writer, engines []engine, results []result) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "CASE"
	for _, e := range engines {
		header += "\t" + e.name
	}
	fmt.Fprintln(w, header+"\tRESULT\tARGO CD MESSAGE")
	for _, r := range results {
		line := r.Name
		for _, e := range engines {
			line += "\t" + r.Verdicts[e.name].Status
		}
		res := "-"
		if r.OK != nil && *r.OK {
			res = "ok"
		} else if r.OK != nil {
			res = "MISMATCH"
		}
		fmt.Fprintln(w, line+"\t"+res+"\t"+r.Verdicts["argocd"].Message)
	}
	w.Flush()
	for _, r := range results {
		for _, m := range r.Mismatches {
			fmt.Fprintf(out, "MISMATCH %s: %s\n", r.Name, m)
		}
	}
}

func compare(want *expect, got map[string]verdict) []string {
	var bad []string
	check := func(engine, want string) {
		v, ran := got[engine]
		switch {
		case !ran:
		case want == "":
			bad = append(bad, fmt.Sprintf("%s: no expectation given (got %s)", engine, v.Status))
		case v.Status != want:
			bad = append(bad, fmt.Sprintf("%s: want %s, got %s (%s%s)", engine, want, v.Status, v.Message, v.Error))
		}
	}
	check("argocd", want.ArgoCD)
	check("kstatus", want.KStatus)
	check("flux", want.Flux)
	if v, ran := got["argocd"]; ran {
		for _, s := range want.ArgoCDMessage {
			if !strings.Contains(v.Message, s) {
				bad = append(bad, fmt.Sprintf("argocd: message %q lacks %q", v.Message, s))
			}
		}
	}
	return bad
}

// readCases accepts one case, a list of cases, or a bare object (a case named after it).
func readCases(path string) ([]testCase, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var cases []testCase
		if err := json.Unmarshal(data, &cases); err != nil {
			return nil, err
		}
		for i, c := range cases {
			if len(c.Object) == 0 {
				return nil, fmt.Errorf("case %d (%q) has no object", i, c.Name)
			}
		}
		return cases, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, err
	}
	if _, ok := probe["object"]; ok {
		var c testCase
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, err
		}
		return []testCase{c}, nil
	}
	var meta struct {
		Metadata struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(data, &meta)
	return []testCase{{Name: meta.Metadata.Namespace + "/" + meta.Metadata.Name, Object: data}}, nil
}

// ---- kstatus ----

func kstatusRate(u *unstructured.Unstructured) verdict {
	res, err := kstatus.Compute(u)
	if err != nil {
		return verdict{Status: "Error", Error: err.Error()}
	}
	return verdict{Status: string(res.Status), Message: res.Message}
}

// ---- Flux ----

func fluxEngine(path string) (func(*unstructured.Unstructured) verdict, error) {
	if path == "" {
		return nil, errors.New("flux: --kustomization is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ks struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			HealthCheckExprs []fluxkustomize.CustomHealthCheck `json:"healthCheckExprs"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &ks); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ks.Kind != "Kustomization" || !strings.HasPrefix(ks.APIVersion, "kustomize.toolkit.fluxcd.io/") {
		return nil, fmt.Errorf("%s: not a Flux Kustomization (%s %s)", path, ks.APIVersion, ks.Kind)
	}
	// The reader kustomize-controller builds from spec.healthCheckExprs; ReadStatusForObject
	// uses neither the RESTMapper nor the cluster reader.
	newReader, err := fluxcel.NewStatusReader(ks.Spec.HealthCheckExprs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	reader := newReader(meta.NewDefaultRESTMapper(nil))
	if !reader.Supports(cloudQuotaGK) {
		return nil, fmt.Errorf("%s: no healthCheckExprs entry for %s", path, cloudQuotaGK)
	}
	return func(u *unstructured.Unstructured) verdict {
		rs, err := reader.ReadStatusForObject(context.Background(), nil, u)
		if err != nil {
			return verdict{Status: "Error", Error: err.Error()}
		}
		v := verdict{Status: rs.Status.String(), Message: rs.Message}
		if rs.Error != nil {
			v.Error = rs.Error.Error()
		}
		return v
	}, nil
}

// ---- Argo CD ----

func scriptFromConfigMap(path string) (script string, openLibs bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false, err
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return "", false, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		return "", false, fmt.Errorf("%s: not the argocd-cm ConfigMap (%s %s)", path, cm.Kind, cm.Metadata.Name)
	}
	script, ok := cm.Data[cmHealthKey]
	if !ok || script == "" {
		return "", false, fmt.Errorf("%s: no data key %s", path, cmHealthKey)
	}
	return script, cm.Data[cmOpenLibsKey] == "true", nil
}

func argoEngine(cmPath, scriptPath string) (func(*unstructured.Unstructured) verdict, error) {
	var script string
	openLibs := false
	switch {
	case cmPath != "" && scriptPath != "":
		return nil, errors.New("argocd: give --argocd-cm or --script, not both")
	case cmPath != "":
		s, o, err := scriptFromConfigMap(cmPath)
		if err != nil {
			return nil, err
		}
		script, openLibs = s, o
	case scriptPath != "":
		b, err := os.ReadFile(scriptPath)
		if err != nil {
			return nil, err
		}
		script = string(b)
	default:
		return nil, errors.New("argocd: --argocd-cm or --script is required")
	}
	return func(u *unstructured.Unstructured) verdict {
		v, err := runHealthLua(script, u.Object, openLibs)
		if err != nil {
			return verdict{Status: "Error", Error: err.Error()}
		}
		return v
	}, nil
}

// safeOsFuncs is gopher-lua's own os.time and os.date, the only os functions Argo CD exposes
// to scripts (its oslib_safe.go carries copies of exactly these two).
var safeOsFuncs = func() map[string]lua.LGFunction {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	l.Push(l.NewFunction(lua.OpenOs))
	l.Push(lua.LString(lua.OsLibName))
	l.Call(1, 0)
	os := l.GetGlobal(lua.OsLibName).(*lua.LTable)
	funcs := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		funcs[name] = os.RawGetString(name).(*lua.LFunction).GFunction
	}
	return funcs
}()

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.OsLibName, safeOsFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

// validHealth is Argo CD's set of health status codes; any other string becomes Unknown.
var validHealth = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func runHealthLua(script string, obj map[string]any, openLibs bool) (verdict, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return verdict{}, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return verdict{}, err
	}
	ret := l.Get(-1)
	switch ret.Type() {
	case lua.LTNil:
		// Argo CD treats a script that returns nothing as an empty health status.
		return verdict{}, nil
	case lua.LTTable:
	default:
		return verdict{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	// The table goes through JSON into Argo CD's HealthStatus{status, message}, as there.
	b, err := luajson.Encode(ret)
	if err != nil {
		return verdict{}, err
	}
	var hs struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &hs); err != nil {
		return verdict{}, fmt.Errorf("health table %s: %w", b, err)
	}
	if !validHealth[hs.Status] {
		return verdict{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return verdict{Status: hs.Status, Message: hs.Message}, nil
}

// toLua converts an unstructured object the way Argo CD hands it to scripts: integers (int64 in
// unstructured objects) and floats become numbers, lists become sequences, maps become
// string-keyed tables, null becomes nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x)
	case int:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

func version() string {
	deps := map[string]string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			deps[d.Path] = d.Version
		}
	}
	parts := []string{}
	for _, p := range []string{
		"sigs.k8s.io/cli-utils", "github.com/fluxcd/pkg/runtime", "github.com/fluxcd/cli-utils",
		"github.com/google/cel-go", "github.com/yuin/gopher-lua", "layeh.com/gopher-json",
	} {
		parts = append(parts, p+" "+deps[p])
	}
	return "gitops-health (" + strings.Join(parts, ", ") + ")"
}
