// Command manifests checks rendered Kubernetes manifests offline.
//
//	manifests NAME=FILE [NAME=FILE ...]
//	manifests chart-schema VALUES.SCHEMA.JSON RAW.RS
//	manifests chart-values-doc VALUES.YAML README.MD
//
// Each FILE is the multi-document YAML that `kustomize build` (or
// `helm template`) printed for one kustomization (or values file), NAME
// labels it in the output. For every set it runs:
//
//   - schema: every document is decoded strictly (unknown or mistyped fields
//     rejected) into the k8s.io/api Go type of its kind, or, for the custom
//     resources the deployment uses (Traefik, cert-manager, Sealed Secrets,
//     Linkerd policy, Prometheus Operator ServiceMonitor), into a
//     hand-written subset of their schema, plus required-field and value
//     checks (a ForwardAuth middleware must not trust client-sent
//     X-Forwarded-* and may only carry known constraints);
//   - pod-security: the restricted Pod Security Standard fields and
//     resources/probes on every container of every workload;
//   - network-policy: default-deny for ingress and egress in every namespace
//     that runs a workload;
//   - references: selectors, ports, volumes, Secrets, ConfigMaps, Services,
//     Middlewares, Certificates and Linkerd Servers and authentications
//     referred to exist and agree;
//   - portcullis-config: the mounted portcullis.toml parses, every file it
//     names is mounted into the container from a key that exists, and
//     trusted_proxies is set (loopback only is accepted when a Linkerd
//     Server with an AuthorizationPolicy guards the port), metrics_listen
//     (if set) is a container port of its own, and ServiceMonitors scrape
//     the port /metrics is served on.
//
// chart-schema compares the config keys of the Helm chart's
// values.schema.json with those the config parser accepts (chartschema.go);
// chart-values-doc, the keys documented in values.yaml with the rows of the
// chart README's values table (chartdoc.go).
//
// It prints one PASS or FAIL line per check and set, details under each
// FAIL, and exits 1 if any check failed.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// object is one rendered document.
type object struct {
	doc        int
	apiVersion string
	kind       string
	name       string
	namespace  string
	raw        []byte
	generic    map[string]any
	typed      any // set when the strict decode succeeded
}

func (o *object) String() string {
	if o.namespace != "" {
		return fmt.Sprintf("%s %s/%s", o.kind, o.namespace, o.name)
	}
	return fmt.Sprintf("%s %s", o.kind, o.name)
}

// set is one rendered kustomization.
type set struct {
	name    string
	objects []*object
}

func (s *set) find(kind, namespace, name string) *object {
	for _, o := range s.objects {
		if o.kind == kind && o.namespace == namespace && o.name == name {
			return o
		}
	}
	return nil
}

func (s *set) ofKind(kind string) []*object {
	var out []*object
	for _, o := range s.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

type tally struct{ passed, failed int }

// report prints one summary line for a check and its problems, if any.
func (t *tally) report(set, check, okText string, problems []string) {
	if len(problems) == 0 {
		t.passed++
		fmt.Printf("PASS [%s] %s: %s\n", set, check, okText)
		return
	}
	t.failed++
	sort.Strings(problems)
	fmt.Printf("FAIL [%s] %s: %d problem(s)\n", set, check, len(problems))
	for _, p := range problems {
		fmt.Printf("       - %s\n", p)
	}
}

func load(name, path string) (*set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &set{name: name}
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var g map[string]any
		if err := sigsyaml.Unmarshal(doc, &g); err != nil {
			return nil, fmt.Errorf("%s: document %d: not YAML: %w", path, i, err)
		}
		o := &object{doc: i, raw: doc, generic: g}
		o.apiVersion, _ = g["apiVersion"].(string)
		o.kind, _ = g["kind"].(string)
		if md, ok := g["metadata"].(map[string]any); ok {
			o.name, _ = md["name"].(string)
			o.namespace, _ = md["namespace"].(string)
		}
		s.objects = append(s.objects, o)
	}
	return s, nil
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "chart-schema" {
		os.Exit(checkChartSchema(os.Args[2], os.Args[3]))
	}
	if len(os.Args) == 4 && os.Args[1] == "chart-values-doc" {
		os.Exit(checkChartValuesDoc(os.Args[2], os.Args[3]))
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: manifests NAME=FILE [NAME=FILE ...]\n       manifests chart-schema VALUES.SCHEMA.JSON RAW.RS\n       manifests chart-values-doc VALUES.YAML README.MD")
		os.Exit(2)
	}
	var t tally
	for _, arg := range os.Args[1:] {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "argument %q is not NAME=FILE\n", arg)
			os.Exit(2)
		}
		s, err := load(name, path)
		if err != nil {
			t.report(name, "parse", "", []string{err.Error()})
			continue
		}
		if len(s.objects) == 0 {
			t.report(name, "parse", "", []string{"no objects rendered"})
			continue
		}
		checkSchema(&t, s)
		checkPodSecurity(&t, s)
		checkNetworkPolicy(&t, s)
		checkReferences(&t, s)
		checkPortcullisConfig(&t, s)
	}
	fmt.Printf("manifests: %d checks passed, %d checks failed\n", t.passed, t.failed)
	if t.failed > 0 {
		os.Exit(1)
	}
}
