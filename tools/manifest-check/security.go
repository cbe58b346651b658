package main

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// workload is a pod template found in a rendered object.
type workload struct {
	obj         *object
	spec        *corev1.PodSpec
	labels      map[string]string
	annotations map[string]string
}

func workloads(s *set) []workload {
	var out []workload
	for _, o := range s.objects {
		switch v := o.typed.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{o, &v.Spec.Template.Spec, v.Spec.Template.Labels, v.Spec.Template.Annotations})
		case *appsv1.StatefulSet:
			out = append(out, workload{o, &v.Spec.Template.Spec, v.Spec.Template.Labels, v.Spec.Template.Annotations})
		case *appsv1.DaemonSet:
			out = append(out, workload{o, &v.Spec.Template.Spec, v.Spec.Template.Labels, v.Spec.Template.Annotations})
		case *batchv1.Job:
			out = append(out, workload{o, &v.Spec.Template.Spec, v.Spec.Template.Labels, v.Spec.Template.Annotations})
		case *batchv1.CronJob:
			out = append(out, workload{o, &v.Spec.JobTemplate.Spec.Template.Spec, v.Spec.JobTemplate.Spec.Template.Labels, v.Spec.JobTemplate.Spec.Template.Annotations})
		case *corev1.Pod:
			out = append(out, workload{o, &v.Spec, v.Labels, v.Annotations})
		}
	}
	return out
}

type container struct {
	c    *corev1.Container
	role string // "init", "sidecar" (restartable init), "container", "ephemeral"
}

func allContainers(ps *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range ps.InitContainers {
		out = append(out, &ps.InitContainers[i])
	}
	for i := range ps.Containers {
		out = append(out, &ps.Containers[i])
	}
	return out
}

func rolesOf(ps *corev1.PodSpec) []container {
	var out []container
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		role := "init"
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			role = "sidecar"
		}
		out = append(out, container{c, role})
	}
	for i := range ps.Containers {
		out = append(out, container{&ps.Containers[i], "container"})
	}
	for i := range ps.EphemeralContainers {
		ec := corev1.Container(ps.EphemeralContainers[i].EphemeralContainerCommon)
		out = append(out, container{&ec, "ephemeral"})
	}
	return out
}

// checkPodSecurity asserts the restricted Pod Security Standard fields plus
// resources and probes for every container of every workload.
func checkPodSecurity(t *tally, s *set) {
	ws := workloads(s)
	var p []string
	containers := 0
	for _, w := range ws {
		ps := w.spec
		psc := ps.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		bad := func(f string, a ...any) { p = append(p, w.obj.String()+": "+fmt.Sprintf(f, a...)) }
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			bad("hostNetwork/hostPID/hostIPC must be false")
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			bad("automountServiceAccountToken must be false (no workload here talks to the API)")
		}
		for _, v := range ps.Volumes {
			if v.HostPath != nil {
				bad("volume %q: hostPath volumes are forbidden", v.Name)
			}
		}
		for _, sc := range psc.Sysctls {
			bad("sysctl %q: not allowed by the restricted standard", sc.Name)
		}
		for _, rc := range rolesOf(ps) {
			containers++
			c := rc.c
			cbad := func(f string, a ...any) {
				p = append(p, fmt.Sprintf("%s %s %q: %s", w.obj, rc.role, c.Name, fmt.Sprintf(f, a...)))
			}
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = psc.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				cbad("runAsNonRoot must be true (pod or container)")
			}
			uid := sc.RunAsUser
			if uid == nil {
				uid = psc.RunAsUser
			}
			if uid == nil {
				cbad("runAsUser must be set to a numeric non-root UID (an image USER name cannot be verified)")
			} else if *uid == 0 {
				cbad("runAsUser must not be 0")
			}
			if sc.Privileged != nil && *sc.Privileged {
				cbad("privileged must not be true")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				cbad("readOnlyRootFilesystem must be true")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				cbad("allowPrivilegeEscalation must be false")
			}
			dropAll := false
			if sc.Capabilities != nil {
				for _, d := range sc.Capabilities.Drop {
					if d == "ALL" {
						dropAll = true
					}
				}
				for _, a := range sc.Capabilities.Add {
					if a != "NET_BIND_SERVICE" {
						cbad("capabilities.add %q is not allowed (restricted allows only NET_BIND_SERVICE)", a)
					}
				}
			}
			if !dropAll {
				cbad("capabilities.drop must contain ALL")
			}
			sp := sc.SeccompProfile
			if sp == nil {
				sp = psc.SeccompProfile
			}
			if sp == nil || (sp.Type != corev1.SeccompProfileTypeRuntimeDefault && sp.Type != corev1.SeccompProfileTypeLocalhost) {
				cbad("seccompProfile must be RuntimeDefault (or Localhost), on the pod or the container")
			}
			if rc.role == "ephemeral" {
				continue
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					cbad("resources.requests.%s must be set", r)
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					cbad("resources.limits.%s must be set", r)
				}
			}
			for r, lim := range c.Resources.Limits {
				if req, ok := c.Resources.Requests[r]; ok && req.Cmp(lim) > 0 {
					cbad("resources.requests.%s exceeds the limit", r)
				}
			}
			if rc.role == "container" || rc.role == "sidecar" {
				if c.LivenessProbe == nil {
					cbad("livenessProbe must be set")
				}
				if c.ReadinessProbe == nil {
					cbad("readinessProbe must be set")
				}
			}
			if img := c.Image; img != "" {
				ref := img[strings.LastIndex(img, "/")+1:]
				if !strings.Contains(ref, "@sha256:") && (!strings.Contains(ref, ":") || strings.HasSuffix(ref, ":latest")) {
					cbad("image %q must be pinned to a tag other than latest, or a digest", img)
				}
			}
		}
	}
	if len(ws) == 0 {
		t.report(s.name, "pod-security", "no workloads in this set", nil)
		return
	}
	t.report(s.name, "pod-security", fmt.Sprintf("%d workload(s), %d container(s): restricted fields, resources, probes, pinned images", len(ws), containers), p)
}

// checkNetworkPolicy requires, in every namespace that runs a workload, a
// policy that selects all pods and denies both ingress and egress.
func checkNetworkPolicy(t *tally, s *set) {
	namespaces := map[string]bool{}
	for _, w := range workloads(s) {
		namespaces[w.obj.namespace] = true
	}
	if len(namespaces) == 0 {
		t.report(s.name, "network-policy default-deny", "no workloads in this set", nil)
		return
	}
	for _, dir := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
		var p, names []string
		for ns := range namespaces {
			found := ""
			for _, o := range s.ofKind("NetworkPolicy") {
				np, ok := o.typed.(*networkingv1.NetworkPolicy)
				if !ok || o.namespace != ns {
					continue
				}
				sel := np.Spec.PodSelector
				if len(sel.MatchLabels)+len(sel.MatchExpressions) != 0 {
					continue
				}
				has := false
				for _, pt := range np.Spec.PolicyTypes {
					has = has || pt == dir
				}
				if has && ((dir == networkingv1.PolicyTypeIngress && len(np.Spec.Ingress) == 0) ||
					(dir == networkingv1.PolicyTypeEgress && len(np.Spec.Egress) == 0)) {
					found = o.name
				}
			}
			label := ns
			if label == "" {
				label = "(no namespace)"
			}
			if found == "" {
				p = append(p, fmt.Sprintf("namespace %s: no NetworkPolicy with podSelector {} denying all %s", label, dir))
			} else {
				names = append(names, label+": "+found)
			}
		}
		sort.Strings(names)
		t.report(s.name, "network-policy default-deny "+strings.ToLower(string(dir)), strings.Join(names, ", "), p)
	}
}
