// Command monitoring-check checks Portcullis' Grafana dashboard and Prometheus
// alerting rules (deploy/monitoring) against the metrics the binary exports.
//
//	monitoring-check -name NAME -exposition FILE -dashboard FILE -rules FILE -rule-tests FILE
//
// -exposition is what a running Portcullis answered on GET /metrics
// (scripts/check-monitoring starts the binary and scrapes it). The checks, one
// PASS or FAIL line each, details under a FAIL:
//
//   - exposition: the text parses as the Prometheus exposition format; the
//     metric names it declares are what every query may select (a histogram
//     declares NAME_bucket, NAME_sum and NAME_count);
//   - dashboard schema: strict decoding into Grafana's own dashboard types
//     (grafana-foundation-sdk: unknown or mistyped fields are rejected, the
//     options of every panel type and the Prometheus queries included), then
//     their Validate();
//   - dashboard panels: panel ids present and unique (rows included), titles,
//     layout inside 24 columns with no two panels overlapping;
//   - dashboard datasource: a `datasource` variable of type datasource for
//     Prometheus, and every panel, query and query variable uses
//     ${datasource};
//   - dashboard variables: `namespace` and `instance` query variables, and
//     every selector of every query filters on both;
//   - dashboard queries / rules queries: every expression parses as PromQL
//     (Grafana's $__rate_interval and friends substituted) and selects only
//     exported metric names, by labels they carry (labels can be verified
//     for metrics that had samples in the scrape; the rest are counted);
//   - rules alerts: every alert has a `for`, a severity of critical, warning
//     or info, and summary and description annotations;
//   - rules tests: every alert is shown firing by at least one case of the
//     rule tests (promtool test rules) and shown quiet by another.
//
// It exits 1 if any check failed, 2 on bad usage.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
)

type tally struct{ passed, failed int }

// report prints one summary line for a check and its problems, if any.
func (t *tally) report(name, check, okText string, problems []string) {
	if len(problems) == 0 {
		t.passed++
		fmt.Printf("PASS [%s] %s: %s\n", name, check, okText)
		return
	}
	t.failed++
	sort.Strings(problems)
	fmt.Printf("FAIL [%s] %s: %d problem(s)\n", name, check, len(problems))
	for _, p := range problems {
		fmt.Printf("       - %s\n", p)
	}
}

func main() {
	name := flag.String("name", "monitoring", "label for the output lines")
	exposition := flag.String("exposition", "", "what GET /metrics answered")
	dashboard := flag.String("dashboard", "", "Grafana dashboard JSON")
	rules := flag.String("rules", "", "Prometheus rule file")
	ruleTests := flag.String("rule-tests", "", "promtool rule test file for -rules")
	flag.Parse()
	if *exposition == "" || *dashboard == "" || *rules == "" || *ruleTests == "" {
		fmt.Fprintln(os.Stderr, "usage: monitoring-check -name NAME -exposition FILE -dashboard FILE -rules FILE -rule-tests FILE")
		os.Exit(2)
	}
	var t tally

	exported, err := readExposition(*exposition)
	if err != nil {
		t.report(*name, "exposition", "", []string{err.Error()})
		fmt.Printf("monitoring-check: %d passed, %d failed\n", t.passed, t.failed)
		os.Exit(1)
	}
	t.report(*name, "exposition", exported.summary(), nil)

	checkDashboard(&t, *name, *dashboard, exported)
	alerts := checkRules(&t, *name, *rules, exported)
	checkRuleTests(&t, *name, *ruleTests, alerts)

	fmt.Printf("monitoring-check: %d passed, %d failed\n", t.passed, t.failed)
	if t.failed > 0 {
		os.Exit(1)
	}
}
