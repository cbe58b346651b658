package main

// The metric names and labels a scrape of /metrics declares.

import (
	"fmt"
	"os"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// targetLabels are added by the scrape (Prometheus, the Prometheus Operator,
// kube-state relabelling), never by Portcullis: every query may use them.
var targetLabels = map[string]bool{
	"job": true, "instance": true, "namespace": true, "pod": true, "service": true,
	"container": true, "endpoint": true,
}

// metric is one name a query can select.
type metric struct {
	family string
	// labels seen on its samples; meaningful only when sampled.
	labels  map[string]bool
	sampled bool
}

type exposition struct {
	metrics  map[string]*metric
	families int
}

func readExposition(path string) (*exposition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not the Prometheus text format: %w", path, err)
	}
	e := &exposition{metrics: map[string]*metric{}, families: len(families)}
	if len(families) == 0 {
		return nil, fmt.Errorf("%s: declares no metric", path)
	}
	for name, fam := range families {
		names := []string{name}
		if fam.GetType() == dto.MetricType_HISTOGRAM {
			names = []string{name + "_bucket", name + "_sum", name + "_count"}
		}
		for _, n := range names {
			m := &metric{family: name, labels: map[string]bool{}}
			for _, s := range fam.GetMetric() {
				m.sampled = true
				for _, l := range s.GetLabel() {
					m.labels[l.GetName()] = true
				}
				if strings.HasSuffix(n, "_bucket") {
					m.labels["le"] = true
				}
			}
			e.metrics[n] = m
		}
	}
	return e, nil
}

func (e *exposition) summary() string {
	var portcullis []string
	for n := range e.metrics {
		if strings.HasPrefix(n, "portcullis_") {
			portcullis = append(portcullis, n)
		}
	}
	sort.Strings(portcullis)
	return fmt.Sprintf("%d families, %d selectable names (%d portcullis_*)", e.families, len(e.metrics), len(portcullis))
}

// names lists every selectable name, sorted (for error messages).
func (e *exposition) names() []string {
	var out []string
	for n := range e.metrics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
