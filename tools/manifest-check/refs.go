package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// secretKeys returns the keys a Secret named name in ns will have, from a
// Secret or a SealedSecret in the set; ok is false if neither is rendered.
func secretKeys(s *set, ns, name string) (map[string]bool, bool) {
	keys := map[string]bool{}
	found := false
	for _, o := range s.objects {
		if o.namespace != ns {
			continue
		}
		switch v := o.typed.(type) {
		case *corev1.Secret:
			if v.Name == name {
				found = true
				for k := range v.Data {
					keys[k] = true
				}
				for k := range v.StringData {
					keys[k] = true
				}
			}
		case *SealedSecret:
			tn := v.Spec.Template.Name
			if tn == "" {
				tn = v.Name
			}
			if tn == name {
				found = true
				for k := range v.Spec.EncryptedData {
					keys[k] = true
				}
				for k := range v.Spec.Template.Data {
					keys[k] = true
				}
			}
		}
	}
	return keys, found
}

func configMapKeys(s *set, ns, name string) (map[string]bool, bool) {
	o := s.find("ConfigMap", ns, name)
	if o == nil {
		return nil, false
	}
	cm, ok := o.typed.(*corev1.ConfigMap)
	if !ok {
		return nil, false
	}
	keys := map[string]bool{}
	for k := range cm.Data {
		keys[k] = true
	}
	for k := range cm.BinaryData {
		keys[k] = true
	}
	return keys, true
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return false
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return !ls.Empty() && ls.Matches(labels.Set(l))
}

func containerPort(ps *corev1.PodSpec, port intstr.IntOrString) bool {
	for _, c := range allContainers(ps) {
		for _, cp := range c.Ports {
			if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

func servicePort(svc *corev1.Service, port intstr.IntOrString) bool {
	for _, sp := range svc.Spec.Ports {
		if (port.Type == intstr.String && sp.Name == port.StrVal) || (port.Type == intstr.Int && sp.Port == port.IntVal) {
			return true
		}
	}
	return false
}

func checkReferences(t *tally, s *set) {
	var p, notes []string
	bad := func(o *object, f string, a ...any) { p = append(p, o.String()+": "+fmt.Sprintf(f, a...)) }
	note := func(o *object, f string, a ...any) { notes = append(notes, o.String()+": "+fmt.Sprintf(f, a...)) }
	ws := workloads(s)
	byName := map[string]workload{}
	for _, w := range ws {
		byName[w.obj.kind+"/"+w.obj.namespace+"/"+w.obj.name] = w
		o, ps := w.obj, w.spec
		if d, ok := o.typed.(*appsv1.Deployment); ok && !selects(d.Spec.Selector, w.labels) {
			bad(o, "spec.selector does not match the pod template labels")
		}
		if sa := ps.ServiceAccountName; sa != "" && sa != "default" && s.find("ServiceAccount", o.namespace, sa) == nil {
			bad(o, "serviceAccountName %q is not rendered", sa)
		}
		vols := map[string]corev1.Volume{}
		for _, v := range ps.Volumes {
			vols[v.Name] = v
		}
		for _, c := range allContainers(ps) {
			for _, m := range c.VolumeMounts {
				if _, ok := vols[m.Name]; !ok {
					bad(o, "container %q mounts unknown volume %q", c.Name, m.Name)
				}
			}
			for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
				if pr != nil && pr.HTTPGet != nil && !containerPort(ps, pr.HTTPGet.Port) {
					bad(o, "container %q probe port %s is not a container port", c.Name, pr.HTTPGet.Port.String())
				}
			}
		}
		type src struct {
			kind, name string
			items      []corev1.KeyToPath
			optional   *bool
		}
		var srcs []src
		for _, v := range ps.Volumes {
			switch {
			case v.ConfigMap != nil:
				srcs = append(srcs, src{"ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional})
			case v.Secret != nil:
				srcs = append(srcs, src{"Secret", v.Secret.SecretName, v.Secret.Items, v.Secret.Optional})
			case v.Projected != nil:
				for _, ps := range v.Projected.Sources {
					if ps.ConfigMap != nil {
						srcs = append(srcs, src{"ConfigMap", ps.ConfigMap.Name, ps.ConfigMap.Items, ps.ConfigMap.Optional})
					}
					if ps.Secret != nil {
						srcs = append(srcs, src{"Secret", ps.Secret.Name, ps.Secret.Items, ps.Secret.Optional})
					}
				}
			}
		}
		for _, sr := range srcs {
			var keys map[string]bool
			var found bool
			if sr.kind == "Secret" {
				keys, found = secretKeys(s, o.namespace, sr.name)
			} else {
				keys, found = configMapKeys(s, o.namespace, sr.name)
			}
			if !found {
				if sr.optional != nil && *sr.optional {
					continue
				}
				note(o, "%s %q is not rendered here; it must exist in the cluster", sr.kind, sr.name)
				continue
			}
			for _, it := range sr.items {
				if !keys[it.Key] {
					bad(o, "%s %q has no key %q", sr.kind, sr.name, it.Key)
				}
			}
		}
	}

	for _, o := range s.objects {
		switch v := o.typed.(type) {
		case *corev1.Service:
			if len(v.Spec.Selector) == 0 {
				continue
			}
			var sel []workload
			for _, w := range ws {
				if w.obj.namespace == o.namespace && labels.SelectorFromSet(v.Spec.Selector).Matches(labels.Set(w.labels)) {
					sel = append(sel, w)
				}
			}
			if len(sel) == 0 {
				bad(o, "selector %v selects no workload", v.Spec.Selector)
				continue
			}
			for _, sp := range v.Spec.Ports {
				tp := sp.TargetPort
				if tp.Type == intstr.Int && tp.IntVal == 0 {
					tp = intstr.FromInt32(sp.Port)
				}
				for _, w := range sel {
					if !containerPort(w.spec, tp) {
						bad(o, "port %q: targetPort %s is not a port of %s", sp.Name, tp.String(), w.obj)
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			n := 0
			for _, w := range ws {
				if w.obj.namespace == o.namespace && selects(v.Spec.Selector, w.labels) {
					n++
				}
			}
			if n == 0 {
				bad(o, "selector selects no workload")
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := v.Spec.ScaleTargetRef
			w, ok := byName[ref.Kind+"/"+o.namespace+"/"+ref.Name]
			if !ok {
				bad(o, "scaleTargetRef %s/%s is not rendered", ref.Kind, ref.Name)
				continue
			}
			min := int32(1)
			if v.Spec.MinReplicas != nil {
				min = *v.Spec.MinReplicas
			}
			for _, pdbObj := range s.ofKind("PodDisruptionBudget") {
				pdb, ok := pdbObj.typed.(*policyv1.PodDisruptionBudget)
				if !ok || pdbObj.namespace != o.namespace || !selects(pdb.Spec.Selector, w.labels) {
					continue
				}
				if ma := pdb.Spec.MinAvailable; ma != nil && ma.Type == intstr.Int && ma.IntVal >= min {
					bad(o, "minReplicas %d <= %s minAvailable %d: node drains would block", min, pdbObj, ma.IntVal)
				}
			}
		case *networkingv1.NetworkPolicy:
			sel := v.Spec.PodSelector
			if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
				continue
			}
			n := 0
			for _, w := range ws {
				if w.obj.namespace == o.namespace && selects(&sel, w.labels) {
					n++
				}
			}
			if n == 0 {
				note(o, "podSelector selects no workload rendered here (fine if those pods are deployed separately)")
			}
		case *IngressRoute:
			for _, r := range v.Spec.Routes {
				for _, svcRef := range r.Services {
					ns := svcRef.Namespace
					if ns == "" {
						ns = o.namespace
					}
					if svcRef.Kind != "" && svcRef.Kind != "Service" {
						continue
					}
					so := s.find("Service", ns, svcRef.Name)
					if so == nil {
						bad(o, "service %s/%s is not rendered", ns, svcRef.Name)
						continue
					}
					if svc, ok := so.typed.(*corev1.Service); ok && !servicePort(svc, svcRef.Port) {
						bad(o, "service %s has no port %s", svcRef.Name, svcRef.Port.String())
					}
				}
				for _, m := range r.Middlewares {
					ns := m.Namespace
					if ns == "" {
						ns = o.namespace
					}
					if s.find("Middleware", ns, m.Name) == nil {
						note(o, "middleware %s/%s is not rendered here; it must exist in the cluster", ns, m.Name)
					}
				}
			}
			if tls := v.Spec.TLS; tls != nil && tls.SecretName != "" {
				found := false
				for _, co := range s.ofKind("Certificate") {
					if c, ok := co.typed.(*Certificate); ok && co.namespace == o.namespace && c.Spec.SecretName == tls.SecretName {
						found = true
						for _, r := range v.Spec.Routes {
							for _, m := range hostRule.FindAllStringSubmatch(r.Match, -1) {
								if !contains(c.Spec.DNSNames, m[1]) {
									bad(o, "host %q is not a dnsName of %s", m[1], co)
								}
							}
						}
					}
				}
				if !found {
					note(o, "TLS secret %q has no Certificate here; it must exist in the cluster", tls.SecretName)
				}
			}
		case *Middleware:
			fa := v.Spec.ForwardAuth
			if fa == nil {
				continue
			}
			u, err := url.Parse(fa.Address)
			if err != nil {
				continue
			}
			parts := strings.Split(u.Hostname(), ".")
			if len(parts) < 3 || parts[2] != "svc" {
				note(o, "forwardAuth.address %q is not a cluster Service name; not cross-checked", fa.Address)
				continue
			}
			if o.namespace == "" {
				note(o, "no namespace in this set (base); address namespace %q not checked", parts[1])
				continue
			}
			so := s.find("Service", parts[1], parts[0])
			if so == nil && !namespaceRendered(s, parts[1]) {
				note(o, "forwardAuth.address names Service %s/%s, deployed separately; it must exist in the cluster", parts[1], parts[0])
				continue
			}
			if so == nil {
				bad(o, "forwardAuth.address names Service %s/%s, which is not rendered", parts[1], parts[0])
				continue
			}
			port, _ := strconv.Atoi(u.Port())
			if svc, ok := so.typed.(*corev1.Service); ok && !servicePort(svc, intstr.FromInt(port)) {
				bad(o, "forwardAuth.address port %q is not a port of %s", u.Port(), so)
			}
		}
	}
	linkerdReferences(s, ws, bad, note)
	monitoringReferences(s, bad, note)
	for _, n := range notes {
		fmt.Printf("NOTE [%s] %s\n", s.name, n)
	}
	t.report(s.name, "references", "selectors, ports, volumes, keys, services, certificates agree", p)
}

// namespaceRendered reports whether any object of the set lives in ns (or is
// the Namespace ns itself).
func namespaceRendered(s *set, ns string) bool {
	for _, o := range s.objects {
		if o.namespace == ns || (o.kind == "Namespace" && o.name == ns) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
