package main

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// Kinds with a real schema: the Go types the API server itself decodes into.
var coreKinds = map[string]func() any{
	"v1/Namespace":                             func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/Pod":                                   func() any { return &corev1.Pod{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"apps/v1/DaemonSet":                        func() any { return &appsv1.DaemonSet{} },
	"batch/v1/Job":                             func() any { return &batchv1.Job{} },
	"batch/v1/CronJob":                         func() any { return &batchv1.CronJob{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
}

// Custom resources: a hand-written subset of each CRD's schema (the fields
// this deployment uses or may reasonably use). Unknown fields are rejected,
// so a typo fails here; a legitimate field missing from the subset must be
// added below.
var crdKinds = map[string]func() any{
	"traefik.io/v1alpha1/Middleware":    func() any { return &Middleware{} },
	"traefik.io/v1alpha1/IngressRoute":  func() any { return &IngressRoute{} },
	"cert-manager.io/v1/Certificate":    func() any { return &Certificate{} },
	"bitnami.com/v1alpha1/SealedSecret": func() any { return &SealedSecret{} },
}

type Middleware struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		// Only forwardAuth is modelled; other middleware types are rejected.
		ForwardAuth *struct {
			Address                  string         `json:"address"`
			TLS                      map[string]any `json:"tls,omitempty"`
			TrustForwardHeader       bool           `json:"trustForwardHeader,omitempty"`
			AuthResponseHeaders      []string       `json:"authResponseHeaders,omitempty"`
			AuthResponseHeadersRegex string         `json:"authResponseHeadersRegex,omitempty"`
			AuthRequestHeaders       []string       `json:"authRequestHeaders,omitempty"`
			AddAuthCookiesToResponse []string       `json:"addAuthCookiesToResponse,omitempty"`
			HeaderField              string         `json:"headerField,omitempty"`
			ForwardBody              bool           `json:"forwardBody,omitempty"`
			MaxBodySize              *int64         `json:"maxBodySize,omitempty"`
			PreserveLocationHeader   bool           `json:"preserveLocationHeader,omitempty"`
			PreserveRequestMethod    bool           `json:"preserveRequestMethod,omitempty"`
		} `json:"forwardAuth,omitempty"`
	} `json:"spec"`
}

type ObjectRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type IngressRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		EntryPoints []string `json:"entryPoints,omitempty"`
		Routes      []struct {
			Match         string         `json:"match"`
			Kind          string         `json:"kind,omitempty"`
			Priority      int            `json:"priority,omitempty"`
			Syntax        string         `json:"syntax,omitempty"`
			Observability map[string]any `json:"observability,omitempty"`
			Middlewares   []ObjectRef    `json:"middlewares,omitempty"`
			Services      []struct {
				Name               string             `json:"name"`
				Namespace          string             `json:"namespace,omitempty"`
				Kind               string             `json:"kind,omitempty"`
				Port               intstr.IntOrString `json:"port,omitempty"`
				Scheme             string             `json:"scheme,omitempty"`
				ServersTransport   string             `json:"serversTransport,omitempty"`
				PassHostHeader     *bool              `json:"passHostHeader,omitempty"`
				Weight             *int               `json:"weight,omitempty"`
				Strategy           string             `json:"strategy,omitempty"`
				NativeLB           *bool              `json:"nativeLB,omitempty"`
				NodePortLB         bool               `json:"nodePortLB,omitempty"`
				Sticky             map[string]any     `json:"sticky,omitempty"`
				ResponseForwarding map[string]any     `json:"responseForwarding,omitempty"`
				HealthCheck        map[string]any     `json:"healthCheck,omitempty"`
			} `json:"services,omitempty"`
		} `json:"routes"`
		TLS *struct {
			SecretName   string           `json:"secretName,omitempty"`
			Options      *ObjectRef       `json:"options,omitempty"`
			Store        *ObjectRef       `json:"store,omitempty"`
			CertResolver string           `json:"certResolver,omitempty"`
			Domains      []map[string]any `json:"domains,omitempty"`
		} `json:"tls,omitempty"`
	} `json:"spec"`
}

type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName            string         `json:"secretName"`
		SecretTemplate        map[string]any `json:"secretTemplate,omitempty"`
		CommonName            string         `json:"commonName,omitempty"`
		DNSNames              []string       `json:"dnsNames,omitempty"`
		IPAddresses           []string       `json:"ipAddresses,omitempty"`
		URIs                  []string       `json:"uris,omitempty"`
		EmailAddresses        []string       `json:"emailAddresses,omitempty"`
		Subject               map[string]any `json:"subject,omitempty"`
		Duration              string         `json:"duration,omitempty"`
		RenewBefore           string         `json:"renewBefore,omitempty"`
		RenewBeforePercentage *int           `json:"renewBeforePercentage,omitempty"`
		IsCA                  bool           `json:"isCA,omitempty"`
		Usages                []string       `json:"usages,omitempty"`
		PrivateKey            *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Group string `json:"group,omitempty"`
			Kind  string `json:"kind,omitempty"`
			Name  string `json:"name"`
		} `json:"issuerRef"`
		RevisionHistoryLimit    *int           `json:"revisionHistoryLimit,omitempty"`
		Keystores               map[string]any `json:"keystores,omitempty"`
		AdditionalOutputFormats []any          `json:"additionalOutputFormats,omitempty"`
	} `json:"spec"`
}

type SealedSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		EncryptedData map[string]string `json:"encryptedData"`
		Template      struct {
			metav1.ObjectMeta `json:"metadata,omitempty"`
			Type              corev1.SecretType `json:"type,omitempty"`
			Immutable         *bool             `json:"immutable,omitempty"`
			Data              map[string]string `json:"data,omitempty"`
		} `json:"template,omitempty"`
	} `json:"spec"`
}

var certUsages = map[string]bool{
	"signing": true, "digital signature": true, "content commitment": true,
	"key encipherment": true, "key agreement": true, "data encipherment": true,
	"cert sign": true, "crl sign": true, "encipher only": true, "decipher only": true,
	"any": true, "server auth": true, "client auth": true, "code signing": true,
	"email protection": true, "s/mime": true, "ipsec end system": true,
	"ipsec tunnel": true, "ipsec user": true, "timestamping": true, "ocsp signing": true,
	"microsoft sgc": true, "netscape sgc": true,
}

// strictDecode decodes YAML the way the API server decodes JSON: field
// names are case-sensitive, and unknown or duplicate fields are errors.
// decoded is false when v could not be filled at all (syntax or type error).
func strictDecode(doc []byte, v any) (decoded bool, errs []error) {
	js, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		return false, []error{err}
	}
	strict, err := kjson.UnmarshalStrict(js, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return false, []error{err}
	}
	return true, strict
}

var hostRule = regexp.MustCompile("Host\\(`([^`]+)`\\)")

// constraintParams are the query parameters Portcullis' decision endpoints
// accept (oauth2-proxy's names).
var constraintParams = map[string]bool{
	"allowed_groups": true, "allowed_roles": true, "allowed_emails": true, "allowed_email_domains": true,
}

func checkSchema(t *tally, s *set) {
	var problems, notes []string
	core, crd := 0, 0
	for _, o := range s.objects {
		if o.apiVersion == "" || o.kind == "" {
			problems = append(problems, fmt.Sprintf("document %d: apiVersion and kind are required", o.doc))
			continue
		}
		if errs := validation.IsDNS1123Subdomain(o.name); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("%s: metadata.name %q: %s", o, o.name, strings.Join(errs, "; ")))
		}
		key := o.apiVersion + "/" + o.kind
		mk, isCore := coreKinds[key]
		if !isCore {
			mk = crdKinds[key]
		}
		if mk == nil {
			problems = append(problems, fmt.Sprintf("%s: no schema known for %s (add it to tools/manifest-check/schema.go)", o, key))
			continue
		}
		v := mk()
		decoded, errs := strictDecode(o.raw, v)
		for _, err := range errs {
			problems = append(problems, fmt.Sprintf("%s: %v", o, err))
		}
		if !decoded {
			continue
		}
		// Even with unknown fields the known ones decoded, so the other
		// checks still see this object.
		o.typed = v
		if isCore {
			core++
		} else {
			crd++
		}
		problems = append(problems, semantic(o, &notes)...)
	}
	for _, n := range notes {
		fmt.Printf("NOTE [%s] %s\n", s.name, n)
	}
	t.report(s.name, "schema", fmt.Sprintf("%d objects (%d k8s.io/api strict, %d custom resources structural)", len(s.objects), core, crd), problems)
}

// semantic holds the required-field and value checks strict decoding
// cannot express.
func semantic(o *object, notes *[]string) []string {
	var p []string
	bad := func(f string, a ...any) { p = append(p, o.String()+": "+fmt.Sprintf(f, a...)) }
	switch v := o.typed.(type) {
	case *corev1.Service:
		if len(v.Spec.Ports) == 0 {
			bad("spec.ports is empty")
		}
		for _, port := range v.Spec.Ports {
			if port.Port < 1 || port.Port > 65535 {
				bad("port %d out of range", port.Port)
			}
		}
	case *appsv1.Deployment:
		p = append(p, podSpecRequired(o, &v.Spec.Template.Spec)...)
		if v.Spec.Selector == nil || len(v.Spec.Selector.MatchLabels)+len(v.Spec.Selector.MatchExpressions) == 0 {
			bad("spec.selector is required")
		}
	case *appsv1.StatefulSet:
		p = append(p, podSpecRequired(o, &v.Spec.Template.Spec)...)
	case *appsv1.DaemonSet:
		p = append(p, podSpecRequired(o, &v.Spec.Template.Spec)...)
	case *policyv1.PodDisruptionBudget:
		if (v.Spec.MinAvailable == nil) == (v.Spec.MaxUnavailable == nil) {
			bad("exactly one of minAvailable and maxUnavailable must be set")
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if v.Spec.MaxReplicas < 1 || (v.Spec.MinReplicas != nil && *v.Spec.MinReplicas > v.Spec.MaxReplicas) {
			bad("replica bounds invalid")
		}
	case *networkingv1.NetworkPolicy:
		if len(v.Spec.PolicyTypes) == 0 {
			bad("spec.policyTypes should be explicit")
		}
	case *Middleware:
		fa := v.Spec.ForwardAuth
		if fa == nil {
			bad("spec.forwardAuth is required (only forwardAuth middlewares are modelled)")
			break
		}
		u, err := url.Parse(fa.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("forwardAuth.address %q is not an http(s) URL", fa.Address)
		} else if u.Path == "/oauth2/forward-auth" || u.Path == "/oauth2/auth" {
			// Per-app constraints; Portcullis answers 400 to any other name.
			for k := range u.Query() {
				if !constraintParams[k] {
					bad("forwardAuth.address: unknown constraint %q (known: allowed_groups, allowed_roles, allowed_emails, allowed_email_domains); Portcullis would answer every check with 400", k)
				}
			}
		}
		if fa.TrustForwardHeader {
			bad("forwardAuth.trustForwardHeader is true: client-sent X-Forwarded-Uri/-Host/-Method reach Portcullis' access rules unless every entry point strips them; set it to false")
		}
	case *IngressRoute:
		if len(v.Spec.EntryPoints) == 0 {
			bad("spec.entryPoints is empty")
		}
		if len(v.Spec.Routes) == 0 {
			bad("spec.routes is empty")
		}
		for i, r := range v.Spec.Routes {
			if r.Match == "" {
				bad("routes[%d].match is required", i)
			}
			if r.Kind != "" && r.Kind != "Rule" {
				bad("routes[%d].kind must be Rule", i)
			}
			if len(r.Services) == 0 {
				bad("routes[%d].services is empty", i)
			}
		}
	case *Certificate:
		sp := v.Spec
		if sp.SecretName == "" {
			bad("spec.secretName is required")
		}
		if len(sp.DNSNames)+len(sp.IPAddresses)+len(sp.URIs)+len(sp.EmailAddresses) == 0 && sp.CommonName == "" {
			bad("no subject: set dnsNames (or another SAN)")
		}
		if sp.IssuerRef.Name == "" {
			bad("spec.issuerRef.name is required")
		}
		if k := sp.IssuerRef.Kind; k != "" && k != "Issuer" && k != "ClusterIssuer" && sp.IssuerRef.Group == "cert-manager.io" {
			bad("issuerRef.kind %q is not Issuer or ClusterIssuer", k)
		}
		for _, d := range []string{sp.Duration, sp.RenewBefore} {
			if d != "" {
				if _, err := time.ParseDuration(d); err != nil {
					bad("duration %q: %v", d, err)
				}
			}
		}
		if pk := sp.PrivateKey; pk != nil {
			switch pk.Algorithm {
			case "", "RSA", "ECDSA", "Ed25519":
			default:
				bad("privateKey.algorithm %q", pk.Algorithm)
			}
			switch pk.RotationPolicy {
			case "", "Never", "Always":
			default:
				bad("privateKey.rotationPolicy %q", pk.RotationPolicy)
			}
		}
		for _, u := range sp.Usages {
			if !certUsages[u] {
				bad("unknown usage %q", u)
			}
		}
	case *SealedSecret:
		if len(v.Spec.EncryptedData) == 0 {
			bad("spec.encryptedData is empty")
		}
		if n := v.Spec.Template.Name; n != "" && n != v.Name {
			bad("template.metadata.name %q differs from metadata.name %q", n, v.Name)
		}
		keys := make([]string, 0, len(v.Spec.EncryptedData))
		for k := range v.Spec.EncryptedData {
			keys = append(keys, k)
		}
		sort.Strings(keys) // the notes come out in a stable order
		for _, k := range keys {
			val := v.Spec.EncryptedData[k]
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				bad("encryptedData key %q: %s", k, strings.Join(errs, "; "))
			}
			if strings.HasPrefix(val, "REPLACE-WITH-KUBESEAL-OUTPUT") {
				*notes = append(*notes, fmt.Sprintf("%s: encryptedData.%s is a placeholder; seal the real value before deploying", o, k))
			}
		}
	}
	linkerdSemantic(o, bad)
	monitoringSemantic(o, bad)
	return p
}

func podSpecRequired(o *object, ps *corev1.PodSpec) []string {
	var p []string
	if len(ps.Containers) == 0 {
		p = append(p, o.String()+": no containers")
	}
	names := map[string]bool{}
	for _, c := range allContainers(ps) {
		if c.Name == "" || c.Image == "" {
			p = append(p, fmt.Sprintf("%s: container %q needs name and image", o, c.Name))
		}
		if names[c.Name] {
			p = append(p, fmt.Sprintf("%s: duplicate container name %q", o, c.Name))
		}
		names[c.Name] = true
	}
	return p
}
