package main

// The Helm chart's values.schema.json describes values.config, which the
// chart renders into portcullis.toml. It must list exactly the keys the
// config parser accepts (src/config/raw.rs: KEYS, RULE_KEYS, ISSUER_KEYS),
// with matching types: a key missing from the schema could not be set
// through the chart, and a key only in the schema would make every pod exit
// with "unknown key".

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// pendingConfigKeys are keys the chart renders before the parser knows
// them; each is reported as a NOTE until src/config/raw.rs lists it.
var pendingConfigKeys = map[string]string{}

type schemaNode struct {
	Type       any                    `json:"type"`
	Properties map[string]*schemaNode `json:"properties"`
	Items      *schemaNode            `json:"items"`
}

func (n *schemaNode) is(t string) bool {
	switch v := n.Type.(type) {
	case string:
		return v == t
	case []any:
		for _, x := range v {
			if x == t {
				return true
			}
		}
	}
	return false
}

var (
	rawKeyEntry = regexp.MustCompile(`\("([a-z_]*)",\s*"([a-z_]+)",\s*Kind::(\w+)\)`)
	quoted      = regexp.MustCompile(`"([a-z_]+)"`)
)

// rustStrList returns the strings of `pub const NAME: &[&str] = &[...];`.
func rustStrList(src, name string) []string {
	i := strings.Index(src, "pub const "+name+":")
	if i < 0 {
		return nil
	}
	rest := src[i:]
	start := strings.Index(rest, "= &[")
	end := strings.Index(rest, "];")
	if start < 0 || end < start {
		return nil
	}
	var out []string
	for _, m := range quoted.FindAllStringSubmatch(rest[start:end], -1) {
		out = append(out, m[1])
	}
	return out
}

// kindType is the JSON schema type a raw.rs Kind is written as in values.
var kindType = map[string]string{
	"Str": "string", "Bool": "boolean", "Int": "integer", "List": "array", "Tables": "array", "Map": "object",
}

func checkChartSchema(schemaPath, rawPath string) int {
	const label = "[helm-chart] values.schema.json config keys"
	var problems, notes []string
	raw, err := os.ReadFile(rawPath)
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", label, err)
		return 1
	}
	js, err := os.ReadFile(schemaPath)
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", label, err)
		return 1
	}
	var root schemaNode
	if err := json.Unmarshal(js, &root); err != nil {
		fmt.Printf("FAIL %s: %s is not JSON: %v\n", label, schemaPath, err)
		return 1
	}
	cfg := root.Properties["config"]
	if cfg == nil || cfg.Properties == nil {
		fmt.Printf("FAIL %s: no properties.config.properties in %s\n", label, schemaPath)
		return 1
	}
	src := string(raw)

	// want: dotted key -> JSON type, from raw.rs.
	want := map[string]string{}
	for _, m := range rawKeyEntry.FindAllStringSubmatch(src, -1) {
		key := m[2]
		if m[1] != "" {
			key = m[1] + "." + m[2]
		}
		want[key] = kindType[m[3]]
	}
	for _, k := range rustStrList(src, "RULE_KEYS") {
		want["rules[]."+k] = ""
	}
	for _, k := range rustStrList(src, "ISSUER_KEYS") {
		want["bearer.issuers[]."+k] = ""
	}
	if len(want) < 10 {
		fmt.Printf("FAIL %s: found only %d keys in %s; has the KEYS table changed shape?\n", label, len(want), rawPath)
		return 1
	}

	// have: the same, from the schema.
	have := map[string]*schemaNode{}
	for k, n := range cfg.Properties {
		if n.is("object") && n.Properties != nil {
			for sk, sn := range n.Properties {
				have[k+"."+sk] = sn
			}
		} else {
			have[k] = n
		}
	}
	for prefix, n := range map[string]*schemaNode{"rules[].": have["rules"], "bearer.issuers[].": have["bearer.issuers"]} {
		if n == nil || n.Items == nil {
			continue
		}
		for k, sn := range n.Items.Properties {
			have[prefix+k] = sn
		}
	}

	for k, t := range want {
		n, ok := have[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: accepted by %s but not in the schema, so values.config cannot set it", k, rawPath))
		case t != "" && !n.is(t):
			problems = append(problems, fmt.Sprintf("%s: the parser reads type %s, the schema says %v", k, t, n.Type))
		}
	}
	for k := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if why, pending := pendingConfigKeys[k]; pending {
			notes = append(notes, fmt.Sprintf("%s: %s is in %s but not yet in %s: %s", label, k, schemaPath, rawPath, why))
			continue
		}
		problems = append(problems, fmt.Sprintf("%s: in the schema but unknown to %s: Portcullis would refuse the file", k, rawPath))
	}
	sort.Strings(problems)
	sort.Strings(notes)
	for _, n := range notes {
		fmt.Printf("NOTE %s\n", n)
	}
	if len(problems) > 0 {
		fmt.Printf("FAIL %s: %d problem(s)\n", label, len(problems))
		for _, p := range problems {
			fmt.Printf("       - %s\n", p)
		}
		return 1
	}
	fmt.Printf("PASS %s: all %d keys of %s, types matching\n", label, len(want), rawPath)
	return 0
}
