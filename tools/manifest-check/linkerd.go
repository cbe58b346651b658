package main

// Linkerd's policy resources: a structural subset of their CRDs (as for the
// other custom resources in schema.go), the value checks strict decoding
// cannot express, and the cross-references between them and the workloads.

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// LinkerdServer is policy.linkerd.io/v1beta3 Server: one port of a set of pods.
type LinkerdServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		PodSelector              *metav1.LabelSelector `json:"podSelector,omitempty"`
		ExternalWorkloadSelector *metav1.LabelSelector `json:"externalWorkloadSelector,omitempty"`
		Port                     intstr.IntOrString    `json:"port"`
		ProxyProtocol            string                `json:"proxyProtocol,omitempty"`
		AccessPolicy             string                `json:"accessPolicy,omitempty"`
	} `json:"spec"`
}

// PolicyRef is the target or authentication reference of an AuthorizationPolicy.
type PolicyRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// AuthorizationPolicy is policy.linkerd.io/v1alpha1 AuthorizationPolicy.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TargetRef                  PolicyRef    `json:"targetRef"`
		RequiredAuthenticationRefs *[]PolicyRef `json:"requiredAuthenticationRefs"`
	} `json:"spec"`
}

// MeshTLSAuthentication is policy.linkerd.io/v1alpha1 MeshTLSAuthentication.
type MeshTLSAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Identities   []string    `json:"identities,omitempty"`
		IdentityRefs []PolicyRef `json:"identityRefs,omitempty"`
	} `json:"spec"`
}

const linkerdPolicyGroup = "policy.linkerd.io"

func init() {
	crdKinds["policy.linkerd.io/v1beta3/Server"] = func() any { return &LinkerdServer{} }
	crdKinds["policy.linkerd.io/v1alpha1/AuthorizationPolicy"] = func() any { return &AuthorizationPolicy{} }
	crdKinds["policy.linkerd.io/v1alpha1/MeshTLSAuthentication"] = func() any { return &MeshTLSAuthentication{} }
}

var (
	proxyProtocols = map[string]bool{"": true, "unknown": true, "HTTP/1": true, "HTTP/2": true, "gRPC": true, "opaque": true, "TLS": true}
	accessPolicies = map[string]bool{"": true, "deny": true, "audit": true, "all-unauthenticated": true, "all-authenticated": true,
		"cluster-authenticated": true, "cluster-unauthenticated": true}
)

// linkerdSemantic checks one decoded Linkerd object on its own.
func linkerdSemantic(o *object, bad func(string, ...any)) {
	switch v := o.typed.(type) {
	case *LinkerdServer:
		if (v.Spec.PodSelector == nil) == (v.Spec.ExternalWorkloadSelector == nil) {
			bad("exactly one of spec.podSelector and spec.externalWorkloadSelector must be set")
		}
		if v.Spec.Port.Type == intstr.String && v.Spec.Port.StrVal == "" || v.Spec.Port.Type == intstr.Int && v.Spec.Port.IntVal == 0 {
			bad("spec.port is required")
		}
		if !proxyProtocols[v.Spec.ProxyProtocol] {
			bad("spec.proxyProtocol %q is not one of unknown, HTTP/1, HTTP/2, gRPC, opaque, TLS", v.Spec.ProxyProtocol)
		}
		if !accessPolicies[v.Spec.AccessPolicy] {
			bad("spec.accessPolicy %q is not a Linkerd default policy", v.Spec.AccessPolicy)
		}
	case *AuthorizationPolicy:
		if v.Spec.TargetRef.Kind == "" || v.Spec.TargetRef.Name == "" {
			bad("spec.targetRef needs kind and name")
		}
		refs := v.Spec.RequiredAuthenticationRefs
		if refs == nil {
			bad("spec.requiredAuthenticationRefs is required")
		} else if len(*refs) == 0 {
			bad("spec.requiredAuthenticationRefs is empty: the policy authorizes every client, authenticated or not")
		}
	case *MeshTLSAuthentication:
		if (len(v.Spec.Identities) == 0) == (len(v.Spec.IdentityRefs) == 0) {
			bad("exactly one of spec.identities and spec.identityRefs must be set")
		}
		for _, id := range v.Spec.Identities {
			if id == "*" {
				bad("identity \"*\" admits every meshed client; name the clients")
			}
		}
		for _, r := range v.Spec.IdentityRefs {
			if r.Kind == "" {
				bad("identityRefs: kind is required")
			}
		}
	}
}

// linkerdReferences checks that Servers select workload ports, and that
// policies name Servers and authentications that exist.
func linkerdReferences(s *set, ws []workload, bad, note func(*object, string, ...any)) {
	for _, o := range s.objects {
		switch v := o.typed.(type) {
		case *LinkerdServer:
			if v.Spec.PodSelector == nil {
				continue
			}
			n := 0
			for _, w := range ws {
				if w.obj.namespace != o.namespace || !selectsOrAll(v.Spec.PodSelector, w.labels) {
					continue
				}
				n++
				if !containerPort(w.spec, v.Spec.Port) {
					bad(o, "port %s is not a container port of %s", v.Spec.Port.String(), w.obj)
				}
			}
			if n == 0 {
				note(o, "podSelector selects no workload rendered here")
			}
		case *AuthorizationPolicy:
			t := v.Spec.TargetRef
			if t.Group == linkerdPolicyGroup && t.Kind == "Server" && s.find("Server", o.namespace, t.Name) == nil {
				bad(o, "targetRef Server %q is not rendered in namespace %q", t.Name, o.namespace)
			}
			if v.Spec.RequiredAuthenticationRefs == nil {
				continue
			}
			for _, r := range *v.Spec.RequiredAuthenticationRefs {
				ns := r.Namespace
				if ns == "" {
					ns = o.namespace
				}
				switch {
				case r.Group == linkerdPolicyGroup && (r.Kind == "MeshTLSAuthentication" || r.Kind == "NetworkAuthentication"):
					if s.find(r.Kind, ns, r.Name) == nil {
						bad(o, "requiredAuthenticationRefs: %s %s/%s is not rendered (Linkerd then ignores the whole policy)", r.Kind, ns, r.Name)
					}
				case r.Kind == "ServiceAccount":
					if s.find("ServiceAccount", ns, r.Name) == nil {
						note(o, "ServiceAccount %s/%s is not rendered here; it must exist in the cluster", ns, r.Name)
					}
				}
			}
		case *MeshTLSAuthentication:
			for _, r := range v.Spec.IdentityRefs {
				if r.Kind != "ServiceAccount" || r.Name == "" {
					continue
				}
				ns := r.Namespace
				if ns == "" {
					ns = o.namespace
				}
				if s.find("ServiceAccount", ns, r.Name) == nil {
					note(o, "ServiceAccount %s/%s is not rendered here; it must exist in the cluster", ns, r.Name)
				}
			}
		}
	}
}

// selectsOrAll is selects, except that an empty selector selects every pod
// (Linkerd's meaning, unlike the "nothing" of selects).
func selectsOrAll(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel != nil && len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return true
	}
	return selects(sel, l)
}

// guardingServer returns the Server that selects workload w on port (a port
// name or number of its containers) and is closed by default with at least
// one AuthorizationPolicy that requires an authentication; why says what is
// missing otherwise.
func guardingServer(s *set, w workload, port int32) (name, why string) {
	for _, o := range s.ofKind("Server") {
		srv, ok := o.typed.(*LinkerdServer)
		if !ok || o.namespace != w.obj.namespace || srv.Spec.PodSelector == nil || !selectsOrAll(srv.Spec.PodSelector, w.labels) {
			continue
		}
		if !serverPortIs(w, srv.Spec.Port, port) {
			continue
		}
		if ap := srv.Spec.AccessPolicy; ap != "" && ap != "deny" {
			return "", fmt.Sprintf("Server %s has accessPolicy %q, which lets clients in without an AuthorizationPolicy", o.name, ap)
		}
		for _, po := range s.ofKind("AuthorizationPolicy") {
			ap, ok := po.typed.(*AuthorizationPolicy)
			if !ok || po.namespace != o.namespace || ap.Spec.TargetRef.Kind != "Server" || ap.Spec.TargetRef.Name != o.name {
				continue
			}
			if ap.Spec.RequiredAuthenticationRefs != nil && len(*ap.Spec.RequiredAuthenticationRefs) > 0 {
				return o.name, ""
			}
		}
		return "", fmt.Sprintf("Server %s has no AuthorizationPolicy requiring an authentication", o.name)
	}
	return "", fmt.Sprintf("no Linkerd Server selects this pod's port %d", port)
}

func serverPortIs(w workload, p intstr.IntOrString, port int32) bool {
	if p.Type == intstr.Int {
		return p.IntVal == port
	}
	for _, c := range allContainers(w.spec) {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal && cp.ContainerPort == port {
				return true
			}
		}
	}
	return false
}
