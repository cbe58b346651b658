package main

// The Prometheus Operator's ServiceMonitor: a structural subset of its CRD
// (as for the other custom resources in schema.go), the value checks strict
// decoding cannot express, and its references to the Services it scrapes.
// Whether it scrapes the port Portcullis serves /metrics on is checked with
// the config (config.go, checkMetricsScrape).

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ServiceMonitor is monitoring.coreos.com/v1 ServiceMonitor.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		TargetLabels      []string             `json:"targetLabels,omitempty"`
		PodTargetLabels   []string             `json:"podTargetLabels,omitempty"`
		Endpoints         []MonitorEndpoint    `json:"endpoints"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		SampleLimit     *int64         `json:"sampleLimit,omitempty"`
		ScrapeProtocols []string       `json:"scrapeProtocols,omitempty"`
		AttachMetadata  map[string]any `json:"attachMetadata,omitempty"`
	} `json:"spec"`
}

// MonitorEndpoint is one scrape endpoint of a ServiceMonitor.
type MonitorEndpoint struct {
	Port                     string              `json:"port,omitempty"`
	TargetPort               *intstr.IntOrString `json:"targetPort,omitempty"`
	Path                     string              `json:"path,omitempty"`
	Scheme                   string              `json:"scheme,omitempty"`
	Params                   map[string][]string `json:"params,omitempty"`
	Interval                 string              `json:"interval,omitempty"`
	ScrapeTimeout            string              `json:"scrapeTimeout,omitempty"`
	TLSConfig                map[string]any      `json:"tlsConfig,omitempty"`
	Authorization            map[string]any      `json:"authorization,omitempty"`
	BasicAuth                map[string]any      `json:"basicAuth,omitempty"`
	OAuth2                   map[string]any      `json:"oauth2,omitempty"`
	HonorLabels              bool                `json:"honorLabels,omitempty"`
	HonorTimestamps          *bool               `json:"honorTimestamps,omitempty"`
	TrackTimestampsStaleness *bool               `json:"trackTimestampsStaleness,omitempty"`
	MetricRelabelings        []map[string]any    `json:"metricRelabelings,omitempty"`
	Relabelings              []map[string]any    `json:"relabelings,omitempty"`
	ProxyURL                 *string             `json:"proxyUrl,omitempty"`
	FollowRedirects          *bool               `json:"followRedirects,omitempty"`
	EnableHTTP2              *bool               `json:"enableHttp2,omitempty"`
	FilterRunning            *bool               `json:"filterRunning,omitempty"`
}

func init() {
	crdKinds["monitoring.coreos.com/v1/ServiceMonitor"] = func() any { return &ServiceMonitor{} }
}

// promDuration is Prometheus' duration syntax (units y w d h m s ms, largest
// first), which time.ParseDuration does not fully accept.
var promDuration = regexp.MustCompile(`^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$`)

func parsePromDuration(s string) (time.Duration, bool) {
	m := promDuration.FindStringSubmatch(s)
	if s == "" || m == nil {
		return 0, false
	}
	units := []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}
	var d time.Duration
	for i, u := range units {
		if n := m[2+2*i]; n != "" {
			var v int64
			fmt.Sscan(n, &v)
			d += time.Duration(v) * u
		}
	}
	return d, true
}

// monitoringSemantic checks one decoded ServiceMonitor on its own.
func monitoringSemantic(o *object, bad func(string, ...any)) {
	v, ok := o.typed.(*ServiceMonitor)
	if !ok {
		return
	}
	if len(v.Spec.Selector.MatchLabels)+len(v.Spec.Selector.MatchExpressions) == 0 {
		bad("spec.selector is empty: it scrapes every Service of its namespaces")
	}
	if len(v.Spec.Endpoints) == 0 {
		bad("spec.endpoints is empty")
	}
	for i, e := range v.Spec.Endpoints {
		if e.Port == "" && e.TargetPort == nil {
			bad("endpoints[%d]: set port (a Service port name) or targetPort", i)
		}
		switch e.Scheme {
		case "", "http", "https", "HTTP", "HTTPS":
		default:
			bad("endpoints[%d].scheme %q is not http or https", i, e.Scheme)
		}
		if e.Path != "" && !strings.HasPrefix(e.Path, "/") {
			bad("endpoints[%d].path %q must start with /", i, e.Path)
		}
		interval, iok := parsePromDuration(e.Interval)
		if e.Interval != "" && !iok {
			bad("endpoints[%d].interval %q is not a Prometheus duration", i, e.Interval)
		}
		timeout, tok := parsePromDuration(e.ScrapeTimeout)
		if e.ScrapeTimeout != "" && !tok {
			bad("endpoints[%d].scrapeTimeout %q is not a Prometheus duration", i, e.ScrapeTimeout)
		}
		if iok && tok && timeout > interval {
			bad("endpoints[%d]: scrapeTimeout %s exceeds interval %s (Prometheus refuses the job)", i, e.ScrapeTimeout, e.Interval)
		}
	}
}

// monitoredServices returns the Services in the set that ServiceMonitor o
// scrapes (by the Services' own labels, in its namespaces) and whether its
// namespaces are known (namespaceSelector.any is not).
func monitoredServices(s *set, o *object, sm *ServiceMonitor) ([]*object, bool) {
	namespaces := []string{o.namespace}
	if ns := sm.Spec.NamespaceSelector; ns != nil {
		if ns.Any {
			return nil, false
		}
		if len(ns.MatchNames) > 0 {
			namespaces = ns.MatchNames
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil, true
	}
	var out []*object
	for _, so := range s.ofKind("Service") {
		svc, ok := so.typed.(*corev1.Service)
		if ok && contains(namespaces, so.namespace) && sel.Matches(labels.Set(svc.Labels)) {
			out = append(out, so)
		}
	}
	return out, true
}

// monitoringReferences checks that every ServiceMonitor selects a rendered
// Service and names ports that Service has.
func monitoringReferences(s *set, bad, note func(*object, string, ...any)) {
	for _, o := range s.ofKind("ServiceMonitor") {
		sm, ok := o.typed.(*ServiceMonitor)
		if !ok {
			continue
		}
		svcs, known := monitoredServices(s, o, sm)
		if !known {
			note(o, "namespaceSelector.any: the Services it scrapes are not cross-checked")
			continue
		}
		if len(svcs) == 0 {
			bad(o, "selector selects no rendered Service")
			continue
		}
		for _, so := range svcs {
			svc := so.typed.(*corev1.Service)
			for i, e := range sm.Spec.Endpoints {
				if e.Port != "" && !servicePort(svc, intstr.FromString(e.Port)) {
					bad(o, "endpoints[%d].port %q is not a port name of %s", i, e.Port, so)
				}
			}
		}
	}
}

// scrape is one ServiceMonitor endpoint resolved to a container port.
type scrape struct {
	monitor *object
	index   int
	port    int32
	path    string
}

// scrapedContainerPorts resolves what ServiceMonitors scrape on workload w:
// the container port numbers (of container c) behind each endpoint of each
// ServiceMonitor whose Services select w, with the path asked for.
func scrapedContainerPorts(s *set, w workload, c *corev1.Container) []scrape {
	byName := func(name string) (int32, bool) {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return cp.ContainerPort, true
			}
		}
		return 0, false
	}
	resolve := func(p intstr.IntOrString) (int32, bool) {
		if p.Type == intstr.Int {
			return p.IntVal, true
		}
		return byName(p.StrVal)
	}
	var out []scrape
	for _, o := range s.ofKind("ServiceMonitor") {
		sm, ok := o.typed.(*ServiceMonitor)
		if !ok {
			continue
		}
		svcs, _ := monitoredServices(s, o, sm)
		for _, so := range svcs {
			svc := so.typed.(*corev1.Service)
			if so.namespace != w.obj.namespace || len(svc.Spec.Selector) == 0 ||
				!labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.labels)) {
				continue
			}
			for i, e := range sm.Spec.Endpoints {
				path := e.Path
				if path == "" {
					path = "/metrics"
				}
				switch {
				case e.Port != "":
					for _, sp := range svc.Spec.Ports {
						if sp.Name != e.Port {
							continue
						}
						tp := sp.TargetPort
						if tp.Type == intstr.Int && tp.IntVal == 0 {
							tp = intstr.FromInt32(sp.Port)
						}
						if n, ok := resolve(tp); ok {
							out = append(out, scrape{o, i, n, path})
						}
					}
				case e.TargetPort != nil:
					if n, ok := resolve(*e.TargetPort); ok {
						out = append(out, scrape{o, i, n, path})
					}
				}
			}
		}
	}
	return out
}
