package main

// PromQL expressions: do they parse, and do they select only what is exported?

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

// grafanaIntervals are Grafana's range macros; for parsing, any duration does.
var grafanaIntervals = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)

// exprCheck is what one expression told us.
type exprCheck struct {
	problems []string
	// label references that could not be verified: the metric had no sample.
	unverified int
	selectors  int
}

// required is a label matcher every selector must carry (dashboard variables).
type required struct {
	label string
	value string
	typ   labels.MatchType
}

func (m required) String() string {
	return fmt.Sprintf(`%s%s%q`, m.label, m.typ, m.value)
}

// checkExpr parses expr and checks every selector: it names a metric that is
// exported (or in known, e.g. a recording rule), its label matchers use labels
// that metric carries, and it has every matcher in need. where prefixes the
// problems.
func checkExpr(where, expr string, e *exposition, known map[string]bool, need []required) exprCheck {
	var c exprCheck
	q := grafanaIntervals.ReplaceAllString(expr, "5m")
	ast, err := promql.ParseExpr(q)
	if err != nil {
		c.problems = append(c.problems, fmt.Sprintf("%s: does not parse: %v", where, err))
		return c
	}
	parser.Inspect(ast, func(node parser.Node, path []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			c.selectors++
			c.selector(where, n, e, known, need)
		case *parser.AggregateExpr:
			if !n.Without {
				c.grouping(where, n, e)
			}
		}
		return nil
	})
	return c
}

func (c *exprCheck) selector(where string, vs *parser.VectorSelector, e *exposition, known map[string]bool, need []required) {
	if vs.Name == "" {
		c.problems = append(c.problems, fmt.Sprintf("%s: selector %s names no metric", where, vs))
		return
	}
	m, exported := e.metrics[vs.Name]
	if !exported && !known[vs.Name] {
		c.problems = append(c.problems, fmt.Sprintf("%s: metric %s is not exported by the binary%s", where, vs.Name, closest(vs.Name, e.names())))
		return
	}
	for _, lm := range vs.LabelMatchers {
		if lm.Name == labels.MetricName || targetLabels[lm.Name] || !exported {
			continue
		}
		if !m.sampled {
			c.unverified++
			continue
		}
		if !m.labels[lm.Name] {
			c.problems = append(c.problems, fmt.Sprintf("%s: %s has no label %q (it has: %s)", where, vs.Name, lm.Name, keys(m.labels)))
		}
	}
	for _, r := range need {
		found := false
		for _, lm := range vs.LabelMatchers {
			if lm.Name == r.label && lm.Type == r.typ && lm.Value == r.value {
				found = true
			}
		}
		if !found {
			c.problems = append(c.problems, fmt.Sprintf("%s: selector %s lacks %s", where, vs, r))
		}
	}
}

// grouping checks the `by (...)` labels of an aggregation: each must be on
// every metric aggregated (or be a target label), or the aggregation silently
// lumps everything into one series.
func (c *exprCheck) grouping(where string, agg *parser.AggregateExpr, e *exposition) {
	var selected []*metric
	var names []string
	parser.Inspect(agg.Expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			if m, ok := e.metrics[vs.Name]; ok {
				selected = append(selected, m)
				names = append(names, vs.Name)
			}
		}
		return nil
	})
	for _, l := range agg.Grouping {
		if targetLabels[l] {
			continue
		}
		for i, m := range selected {
			if !m.sampled {
				c.unverified++
				continue
			}
			if !m.labels[l] {
				c.problems = append(c.problems, fmt.Sprintf("%s: %s by (%s): %s has no label %q", where, agg.Op, strings.Join(agg.Grouping, ", "), names[i], l))
			}
		}
	}
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// closest suggests an exported name sharing the longest prefix with name.
func closest(name string, names []string) string {
	best, bestLen := "", 0
	for _, n := range names {
		l := 0
		for l < len(n) && l < len(name) && n[l] == name[l] {
			l++
		}
		if l > bestLen {
			best, bestLen = n, l
		}
	}
	if bestLen < len("portcullis_")+5 {
		return ""
	}
	return fmt.Sprintf(" (closest exported: %s)", best)
}
