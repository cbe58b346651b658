package main

// The Helm chart documents each value twice: a "# -- " comment above the key
// in values.yaml and a row of the values table (under "## Values") in the
// chart's README.md.
// chart-values-doc checks that every key is documented (itself, or as part
// of a documented parent or section) and that both name the same keys, so
// neither drifts.

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

var (
	valuesKeyLine = regexp.MustCompile(`^(\s*)([A-Za-z_][\w.-]*):`)
	readmeRow     = regexp.MustCompile("^\\| `([A-Za-z_][\\w.-]*)` \\|")
)

// documentedValues returns the dotted paths of the keys in values.yaml that
// have a "# -- " comment right above them (other comment lines may follow
// it), and of all keys.
func documentedValues(text string) (documented, all []string, err error) {
	var out, stack []string
	pending := false
	for n, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, "#"):
			if strings.HasPrefix(trimmed, "# -- ") {
				pending = true
			}
			continue
		}
		m := valuesKeyLine.FindStringSubmatch(line)
		if m == nil {
			continue // a list item or a continuation line
		}
		if len(m[1])%2 != 0 {
			return nil, nil, fmt.Errorf("line %d: indentation is not a multiple of two spaces", n+1)
		}
		depth := len(m[1]) / 2
		if depth > len(stack) {
			return nil, nil, fmt.Errorf("line %d: key %q is indented deeper than its parent", n+1, m[2])
		}
		stack = append(stack[:depth], m[2])
		all = append(all, strings.Join(stack, "."))
		if pending {
			out = append(out, strings.Join(stack, "."))
			pending = false
		}
	}
	return out, all, nil
}

// undocumented returns the keys that have no "# -- " comment themselves, on
// a parent (which documents its children) or on a child (the key is then a
// section).
func undocumented(documented, all []string) []string {
	var out []string
	for _, k := range all {
		ok := false
		for _, d := range documented {
			if k == d || strings.HasPrefix(k, d+".") || strings.HasPrefix(d, k+".") {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, k)
		}
	}
	return out
}

func checkChartValuesDoc(valuesPath, readmePath string) int {
	const label = "[helm-chart] values documented in README.md"
	values, err := os.ReadFile(valuesPath)
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", label, err)
		return 1
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", label, err)
		return 1
	}
	keys, all, err := documentedValues(string(values))
	if err != nil {
		fmt.Printf("FAIL %s: %s: %v\n", label, valuesPath, err)
		return 1
	}
	inValues := map[string]bool{}
	for _, k := range keys {
		inValues[k] = true
	}
	// Rows of the table under the "## Values" heading (other tables name
	// config keys, not values).
	inReadme := map[string]bool{}
	inSection := false
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "## ") {
			inSection = strings.TrimSpace(line) == "## Values"
		}
		if m := readmeRow.FindStringSubmatch(line); inSection && m != nil {
			inReadme[m[1]] = true
		}
	}
	var problems []string
	for _, k := range undocumented(keys, all) {
		problems = append(problems, fmt.Sprintf("%s: no \"# -- \" comment in %s (on it, a parent or a child)", k, valuesPath))
	}
	for k := range inValues {
		if !inReadme[k] {
			problems = append(problems, fmt.Sprintf("%s: documented in %s, but no row of the values table in %s", k, valuesPath, readmePath))
		}
	}
	for k := range inReadme {
		if !inValues[k] {
			problems = append(problems, fmt.Sprintf("%s: a row in %s, but no key with a \"# -- \" comment in %s", k, readmePath, valuesPath))
		}
	}
	if len(keys) == 0 {
		problems = append(problems, "no \"# -- \" comments found in "+valuesPath)
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		fmt.Printf("FAIL %s: %d problem(s)\n", label, len(problems))
		for _, p := range problems {
			fmt.Printf("       - %s\n", p)
		}
		return 1
	}
	fmt.Printf("PASS %s: all %d documented keys of %s have a row, and no row is stale\n", label, len(keys), valuesPath)
	return 0
}
