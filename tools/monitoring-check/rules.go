package main

// The alerting rules and their promtool unit tests. `promtool check rules`
// validates the file's format and templates; this checks what it can't know:
// the metrics exist, every alert is operable and every alert is tested both
// ways.

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var severities = map[string]bool{"critical": true, "warning": true, "info": true}

// checkRules reports on the rule file and returns its alert names.
func checkRules(t *tally, name, path string, e *exposition) []string {
	var f ruleFile
	if err := decodeStrict(path, &f); err != nil {
		t.report(name, "rules queries", "", []string{err.Error()})
		return nil
	}
	known := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	var queryProblems, alertProblems, alerts []string
	unverified, selectors := 0, 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			what := "record " + r.Record
			if r.Alert != "" {
				what = "alert " + r.Alert
				alerts = append(alerts, r.Alert)
				alertProblems = append(alertProblems, alertProblemsOf(r.Alert, r.For, r.Labels, r.Annotations)...)
			}
			c := checkExpr(what, r.Expr, e, known, nil)
			queryProblems = append(queryProblems, c.problems...)
			unverified += c.unverified
			selectors += c.selectors
		}
	}
	if len(alerts) == 0 {
		alertProblems = append(alertProblems, path+": no alert")
	}
	t.report(name, "rules queries", fmt.Sprintf("%d rules, %d selectors, every one an exported metric (%d label references on metrics without samples in the scrape not verifiable)", len(alerts)+len(known), selectors, unverified), queryProblems)
	t.report(name, "rules alerts", fmt.Sprintf("%d alerts, each with for, severity, summary and description", len(alerts)), alertProblems)
	return alerts
}

func alertProblemsOf(alert, forDuration string, labels, annotations map[string]string) []string {
	var problems []string
	if forDuration == "" || forDuration == "0s" || forDuration == "0" {
		problems = append(problems, fmt.Sprintf("alert %s: no `for` (one bad scrape would page)", alert))
	}
	if !severities[labels["severity"]] {
		problems = append(problems, fmt.Sprintf("alert %s: severity %q, want critical, warning or info", alert, labels["severity"]))
	}
	for _, a := range []string{"summary", "description"} {
		if strings.TrimSpace(annotations[a]) == "" {
			problems = append(problems, fmt.Sprintf("alert %s: no %s annotation", alert, a))
		}
	}
	return problems
}

type ruleTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	GroupEvalOrder     []string `yaml:"group_eval_order"`
	Tests              []struct {
		Name          string         `yaml:"name"`
		Interval      string         `yaml:"interval"`
		InputSeries   []yaml.Node    `yaml:"input_series"`
		ExternalLabel map[string]any `yaml:"external_labels"`
		AlertTests    []struct {
			EvalTime  string      `yaml:"eval_time"`
			Alertname string      `yaml:"alertname"`
			ExpAlerts []yaml.Node `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromqlTests []yaml.Node `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// checkRuleTests requires, for every alert, a test case where it fires and one
// where it stays quiet (promtool runs them; this makes sure they exist).
func checkRuleTests(t *tally, name, path string, alerts []string) {
	var f ruleTests
	if err := decodeStrict(path, &f); err != nil {
		t.report(name, "rules tests", "", []string{err.Error()})
		return
	}
	fires, quiet := map[string]int{}, map[string]int{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertTests {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname]++
			} else {
				quiet[a.Alertname]++
			}
		}
	}
	var problems []string
	known := map[string]bool{}
	for _, a := range alerts {
		known[a] = true
		if fires[a] == 0 {
			problems = append(problems, fmt.Sprintf("alert %s: no test case shows it firing", a))
		}
		if quiet[a] == 0 {
			problems = append(problems, fmt.Sprintf("alert %s: no test case shows it quiet", a))
		}
	}
	var tested []string
	for a := range fires {
		tested = append(tested, a)
	}
	for a := range quiet {
		tested = append(tested, a)
	}
	sort.Strings(tested)
	for i, a := range tested {
		if !known[a] && (i == 0 || tested[i-1] != a) {
			problems = append(problems, fmt.Sprintf("test of alert %s, which the rules do not define", a))
		}
	}
	cases := 0
	for _, a := range alerts {
		cases += fires[a] + quiet[a]
	}
	t.report(name, "rules tests", fmt.Sprintf("%d alerts, each shown firing and quiet (%d alert cases in %d tests)", len(alerts), cases, len(f.Tests)), problems)
}

func decodeStrict(path string, out any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
