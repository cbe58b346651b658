package main

// The Grafana dashboard: schema, panels, datasource, variables and queries.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/model/labels"
)

// The part of the dashboard model the checks below read; the schema check
// decodes the whole of it into Grafana's types.
type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	Expr       string `json:"expr"`
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
}

type gridPos struct{ X, Y, W, H int }

type panel struct {
	ID         *int     `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *dsRef   `json:"datasource"`
	GridPos    *gridPos `json:"gridPos"`
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // a collapsed row's
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *dsRef          `json:"datasource"`
}

type board struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

const datasourceVar = "${datasource}"

// Every dashboard query filters on these variables' values.
var dashboardMatchers = []required{
	{label: "namespace", value: "$namespace", typ: labels.MatchRegexp},
	{label: "instance", value: "$instance", typ: labels.MatchRegexp},
}

func checkDashboard(t *tally, name, path string, e *exposition) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.report(name, "dashboard schema", "", []string{err.Error()})
		return
	}
	if !json.Valid(raw) {
		t.report(name, "dashboard schema", "", []string{path + ": not valid JSON"})
		return
	}
	var b board
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil {
		t.report(name, "dashboard schema", "", []string{fmt.Sprintf("%s: %v", path, err)})
		return
	}
	all := flatten(b.Panels)

	t.report(name, "dashboard schema", fmt.Sprintf("%q decodes strictly into Grafana's dashboard types and validates", b.Title), schemaProblems(raw))
	t.report(name, "dashboard panels", fmt.Sprintf("%d panels, ids unique, laid out in 24 columns without overlap", len(all)), panelProblems(b.Panels, all))
	t.report(name, "dashboard datasource", "variable `datasource` (prometheus) used by every panel, query and variable", datasourceProblems(b, all))

	var problems []string
	queries, unverified, selectors := 0, 0, 0
	for _, p := range all {
		for _, q := range p.Targets {
			queries++
			c := checkExpr(fmt.Sprintf("panel %q query %s", p.Title, q.RefID), q.Expr, e, nil, dashboardMatchers)
			problems = append(problems, c.problems...)
			unverified += c.unverified
			selectors += c.selectors
		}
	}
	t.report(name, "dashboard queries", fmt.Sprintf("%d queries, %d selectors, every one an exported metric filtered by $namespace and $instance (%d label references on metrics without samples in the scrape not verifiable)", queries, selectors, unverified), problems)
	t.report(name, "dashboard variables", "`namespace` and `instance` query variables over exported metrics", variableProblems(b, e))
}

func flatten(panels []panel) []panel {
	var out []panel
	for _, p := range panels {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func schemaProblems(raw []byte) []string {
	plugins.RegisterDefaultPlugins()
	var d dashboard.Dashboard
	if err := d.UnmarshalJSONStrict(raw); err != nil {
		return splitErrors("strict decoding", err)
	}
	if err := d.Validate(); err != nil {
		return splitErrors("validation", err)
	}
	return nil
}

// splitErrors makes one problem of each line of a cog.BuildErrors.
func splitErrors(what string, err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, what+": "+line)
		}
	}
	return out
}

func panelProblems(top, all []panel) []string {
	var problems []string
	seen := map[int]string{}
	for _, p := range all {
		if p.ID == nil {
			problems = append(problems, fmt.Sprintf("panel %q has no id", p.Title))
			continue
		}
		if other, dup := seen[*p.ID]; dup {
			problems = append(problems, fmt.Sprintf("panel id %d used by %q and %q", *p.ID, other, p.Title))
		}
		seen[*p.ID] = p.Title
		if strings.TrimSpace(p.Title) == "" {
			problems = append(problems, fmt.Sprintf("panel %d has no title", *p.ID))
		}
		if p.GridPos == nil {
			problems = append(problems, fmt.Sprintf("panel %q has no gridPos", p.Title))
			continue
		}
		g := p.GridPos
		if g.X < 0 || g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
			problems = append(problems, fmt.Sprintf("panel %q: gridPos %+v is outside the 24 columns", p.Title, *g))
		}
		if p.Type != "row" && len(p.Targets) == 0 && p.Type != "text" {
			problems = append(problems, fmt.Sprintf("panel %q has no query", p.Title))
		}
	}
	// Panels inside a collapsed row are laid out when it opens; only the top
	// level shares one grid.
	for i, a := range top {
		for _, b := range top[i+1:] {
			if a.GridPos == nil || b.GridPos == nil {
				continue
			}
			if overlap(*a.GridPos, *b.GridPos) {
				problems = append(problems, fmt.Sprintf("panels %q and %q overlap", a.Title, b.Title))
			}
		}
	}
	return problems
}

func overlap(a, b gridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

func datasourceProblems(b board, all []panel) []string {
	var problems []string
	var ds *variable
	for i, v := range b.Templating.List {
		if v.Name == "datasource" {
			ds = &b.Templating.List[i]
		}
	}
	if ds == nil {
		problems = append(problems, "no templating variable named `datasource`")
	} else {
		var q string
		_ = json.Unmarshal(ds.Query, &q)
		if ds.Type != "datasource" || q != "prometheus" {
			problems = append(problems, fmt.Sprintf("variable `datasource` is type %q query %q, want type \"datasource\" query \"prometheus\"", ds.Type, q))
		}
	}
	good := func(r *dsRef) bool {
		return r != nil && r.Type == "prometheus" && r.UID == datasourceVar
	}
	for _, p := range all {
		if p.Type == "row" {
			continue
		}
		if !good(p.Datasource) {
			problems = append(problems, fmt.Sprintf("panel %q: datasource is %s, want {type: prometheus, uid: %s}", p.Title, show(p.Datasource), datasourceVar))
		}
		for _, q := range p.Targets {
			if !good(q.Datasource) {
				problems = append(problems, fmt.Sprintf("panel %q query %s: datasource is %s, want {type: prometheus, uid: %s}", p.Title, q.RefID, show(q.Datasource), datasourceVar))
			}
		}
	}
	for _, v := range b.Templating.List {
		if v.Type == "query" && !good(v.Datasource) {
			problems = append(problems, fmt.Sprintf("variable `%s`: datasource is %s, want {type: prometheus, uid: %s}", v.Name, show(v.Datasource), datasourceVar))
		}
	}
	return problems
}

func show(r *dsRef) string {
	if r == nil {
		return "missing"
	}
	return fmt.Sprintf("{type: %q, uid: %q}", r.Type, r.UID)
}

var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

func variableProblems(b board, e *exposition) []string {
	var problems []string
	found := map[string]bool{}
	for _, v := range b.Templating.List {
		if v.Type != "query" {
			continue
		}
		found[v.Name] = true
		q := queryText(v.Query)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			problems = append(problems, fmt.Sprintf("variable `%s`: query %q is not label_values(SELECTOR, LABEL)", v.Name, q))
			continue
		}
		c := checkExpr(fmt.Sprintf("variable `%s`", v.Name), m[1], e, nil, nil)
		problems = append(problems, c.problems...)
	}
	for _, want := range []string{"namespace", "instance"} {
		if !found[want] {
			problems = append(problems, fmt.Sprintf("no query variable `%s`", want))
		}
	}
	return problems
}

// queryText is a query variable's query: a string, or {"query": "..."}.
func queryText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Query
}
