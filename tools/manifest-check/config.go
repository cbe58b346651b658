package main

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// configPath returns the --config argument (or PORTCULLIS_CONFIG) of c.
func configPath(c *corev1.Container) string {
	args := append(append([]string{}, c.Command...), c.Args...)
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	for _, e := range c.Env {
		if e.Name == "PORTCULLIS_CONFIG" {
			return e.Value
		}
	}
	return ""
}

// fileSource says where a file path inside container c comes from.
type fileSource struct {
	kind, name, key string // "ConfigMap"/"Secret", object name, key
	optional        bool
}

func resolveFile(ps *corev1.PodSpec, c *corev1.Container, file string) ([]fileSource, string) {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if m.MountPath == file || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if best == nil || len(m.MountPath) > len(best.MountPath) {
				best = m
			}
		}
	}
	if best == nil {
		return nil, "is not under any volumeMount of the container"
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(file, best.MountPath), "/")
	if best.SubPath != "" {
		if rel != "" {
			return nil, fmt.Sprintf("lies below the subPath mount %s", best.MountPath)
		}
		rel = best.SubPath
	}
	var vol *corev1.Volume
	for i := range ps.Volumes {
		if ps.Volumes[i].Name == best.Name {
			vol = &ps.Volumes[i]
		}
	}
	if vol == nil {
		return nil, fmt.Sprintf("mount %s has no volume", best.MountPath)
	}
	pick := func(items []corev1.KeyToPath) (string, bool) {
		if len(items) == 0 {
			return rel, true
		}
		for _, it := range items {
			if it.Path == rel {
				return it.Key, true
			}
		}
		return "", false
	}
	opt := func(b *bool) bool { return b != nil && *b }
	var out []fileSource
	switch {
	case vol.ConfigMap != nil:
		if k, ok := pick(vol.ConfigMap.Items); ok {
			out = append(out, fileSource{"ConfigMap", vol.ConfigMap.Name, k, opt(vol.ConfigMap.Optional)})
		}
	case vol.Secret != nil:
		if k, ok := pick(vol.Secret.Items); ok {
			out = append(out, fileSource{"Secret", vol.Secret.SecretName, k, opt(vol.Secret.Optional)})
		}
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			if src.ConfigMap != nil {
				if k, ok := pick(src.ConfigMap.Items); ok {
					out = append(out, fileSource{"ConfigMap", src.ConfigMap.Name, k, opt(src.ConfigMap.Optional)})
				}
			}
			if src.Secret != nil {
				if k, ok := pick(src.Secret.Items); ok {
					out = append(out, fileSource{"Secret", src.Secret.Name, k, opt(src.Secret.Optional)})
				}
			}
		}
	default:
		return nil, fmt.Sprintf("volume %q is not a ConfigMap, Secret or projected volume", vol.Name)
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("no item of volume %q maps to %s", vol.Name, rel)
	}
	return out, ""
}

// collectFiles walks the parsed TOML for keys ending in _file.
func collectFiles(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			collectFiles(prefix+k+".", x, out)
		case string:
			if strings.HasSuffix(k, "_file") {
				out[prefix+k] = x
			}
		}
	}
}

func get(m map[string]any, dotted string) (any, bool) {
	cur := any(m)
	for _, part := range strings.Split(dotted, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// asList reads a TOML array of strings (other items are skipped).
func asList(v any) []string {
	var out []string
	if items, ok := v.([]any); ok {
		for _, i := range items {
			if s, ok := i.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func getString(m map[string]any, dotted string) string {
	v, _ := get(m, dotted)
	s, _ := v.(string)
	return s
}

func checkPortcullisConfig(t *tally, s *set) {
	var p []string
	n := 0
	for _, w := range workloads(s) {
		for _, c := range allContainers(w.spec) {
			cfgPath := configPath(c)
			if cfgPath == "" {
				continue
			}
			n++
			where := fmt.Sprintf("%s container %q", w.obj, c.Name)
			bad := func(f string, a ...any) { p = append(p, where+": "+fmt.Sprintf(f, a...)) }
			srcs, why := resolveFile(w.spec, c, cfgPath)
			if why != "" {
				bad("config %s %s", cfgPath, why)
				continue
			}
			cmObj := s.find("ConfigMap", w.obj.namespace, srcs[0].name)
			if srcs[0].kind != "ConfigMap" || cmObj == nil {
				bad("config %s does not come from a rendered ConfigMap", cfgPath)
				continue
			}
			cm := cmObj.typed.(*corev1.ConfigMap)
			text, ok := cm.Data[srcs[0].key]
			if !ok {
				bad("ConfigMap %s has no key %q", cm.Name, srcs[0].key)
				continue
			}
			var cfg map[string]any
			if _, err := toml.Decode(text, &cfg); err != nil {
				bad("%s is not valid TOML: %v", srcs[0].key, err)
				continue
			}
			for _, k := range []string{"listen", "public_url", "oidc.issuer_url", "oidc.client_id"} {
				if getString(cfg, k) == "" {
					bad("config key %s is required", k)
				}
			}
			for _, k := range []string{"oidc.client_secret", "session.cookie_secret", "session.redis_password"} {
				if _, inline := get(cfg, k); inline {
					bad("config key %s puts a secret into a ConfigMap; use %s_file", k, k)
				}
			}
			for _, k := range []string{"oidc.client_secret_file", "session.cookie_secret_file"} {
				if getString(cfg, k) == "" {
					bad("config key %s is required", k)
				}
			}
			if getString(cfg, "session.store") == "redis" {
				key, urls := "session.redis_url", []string{getString(cfg, "session.redis_url")}
				if mode := getString(cfg, "session.redis_mode"); mode == "sentinel" || mode == "cluster" {
					key, urls = "session.redis_urls", nil
					if list, ok := get(cfg, "session.redis_urls"); ok {
						urls = asList(list)
					}
				}
				if len(urls) == 0 || urls[0] == "" {
					bad("session.store = redis needs %s", key)
				}
				for _, ru := range urls {
					if u, err := url.Parse(ru); ru != "" && (err != nil || u.Scheme != "rediss") {
						bad("%s %q should use rediss:// (TLS)", key, ru)
					}
				}
			}
			listenPort := 0
			if _, port, err := net.SplitHostPort(getString(cfg, "listen")); err == nil {
				listenPort, _ = strconv.Atoi(port)
				if !containerPort(&corev1.PodSpec{Containers: []corev1.Container{*c}}, intstr.FromInt(listenPort)) {
					bad("listen port %s is not a containerPort", port)
				}
				checkTrustedProxies(s, w, cfg, int32(listenPort), bad)
			} else {
				bad("listen %q is not host:port", getString(cfg, "listen"))
			}
			checkMetricsListener(s, w, c, cfg, listenPort, bad)
			pub, err := url.Parse(getString(cfg, "public_url"))
			if err == nil {
				secure, _ := get(cfg, "session.cookie_secure")
				if pub.Scheme == "https" && secure != true {
					bad("public_url is https but session.cookie_secure is not true")
				}
				hosts := map[string]bool{}
				for _, o := range s.ofKind("IngressRoute") {
					if ir, ok := o.typed.(*IngressRoute); ok && o.namespace == w.obj.namespace {
						for _, r := range ir.Spec.Routes {
							for _, m := range hostRule.FindAllStringSubmatch(r.Match, -1) {
								hosts[m[1]] = true
							}
						}
					}
				}
				if len(hosts) > 0 && !hosts[pub.Hostname()] {
					bad("public_url host %q is not routed by any IngressRoute here", pub.Hostname())
				}
			}
			if name := getString(cfg, "session.cookie_name"); name != "" {
				for _, o := range s.ofKind("Middleware") {
					if mw, ok := o.typed.(*Middleware); ok && mw.Spec.ForwardAuth != nil && len(mw.Spec.ForwardAuth.AddAuthCookiesToResponse) > 0 &&
						!contains(mw.Spec.ForwardAuth.AddAuthCookiesToResponse, name) {
						bad("%s addAuthCookiesToResponse lacks the session cookie %q", o, name)
					}
				}
			}
			files := map[string]string{}
			collectFiles("", cfg, files)
			keys := make([]string, 0, len(files))
			for k := range files {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				f := path.Clean(files[k])
				srcs, why := resolveFile(w.spec, c, f)
				if why != "" {
					bad("%s = %q %s", k, f, why)
					continue
				}
				found := false
				for _, src := range srcs {
					var ks map[string]bool
					var rendered bool
					if src.kind == "Secret" {
						ks, rendered = secretKeys(s, w.obj.namespace, src.name)
					} else {
						ks, rendered = configMapKeys(s, w.obj.namespace, src.name)
					}
					if !rendered && !src.optional {
						found = true // external object, e.g. the CA bundle; noted by references
					}
					if rendered && ks[src.key] {
						found = true
					}
				}
				if !found {
					bad("%s = %q: no rendered Secret/ConfigMap provides it (key %q of %s %q)", k, f, srcs[0].key, srcs[0].kind, srcs[0].name)
				}
			}
		}
	}
	if n == 0 {
		t.report(s.name, "portcullis-config", "no Portcullis container in this set", nil)
		return
	}
	t.report(s.name, "portcullis-config", fmt.Sprintf("%d container(s): config parses, every *_file is mounted from an existing key", n), p)
}

// checkTrustedProxies: trusted_proxies must be set, as CIDRs. Under Linkerd
// every connection reaches Portcullis from its sidecar on loopback, so a list
// of loopback only means "whoever the sidecar lets in": then a Linkerd Server
// with an AuthorizationPolicy must guard the port. A meshed pod whose list
// lacks loopback would refuse every check.
func checkTrustedProxies(s *set, w workload, cfg map[string]any, port int32, bad func(string, ...any)) {
	v, ok := get(cfg, "trusted_proxies")
	if !ok {
		bad("trusted_proxies is not set: every client that reaches port %d may ask the decision endpoints", port)
		return
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		bad("trusted_proxies must be a non-empty list of CIDRs")
		return
	}
	loopbackOnly, hasLoopback := true, false
	for i, e := range list {
		str, _ := e.(string)
		_, n, err := net.ParseCIDR(str)
		if err != nil {
			bad("trusted_proxies[%d] = %q is not a CIDR", i, str)
			continue
		}
		if n.IP.IsLoopback() {
			hasLoopback = true
		} else {
			loopbackOnly = false
		}
	}
	if w.annotations["linkerd.io/inject"] == "enabled" && !hasLoopback {
		bad("the pod is Linkerd-meshed, so every request reaches Portcullis from 127.0.0.1, which trusted_proxies lacks: every check would get 403")
	}
	if loopbackOnly && hasLoopback {
		if _, why := guardingServer(s, w, port); why != "" {
			bad("trusted_proxies admits only loopback, i.e. whoever the Linkerd proxy lets in, but %s (see deploy/kubernetes/base/linkerd-policy.yaml)", why)
		}
	}
}

// checkMetricsListener: metrics_listen (optional) is the address of a second
// listener serving /metrics, /ping and /ready; once set, /metrics is no
// longer on the main listener. It must be host:port on a container port of
// its own, and every ServiceMonitor scraping this pod must reach the port
// /metrics is actually served on.
func checkMetricsListener(s *set, w workload, c *corev1.Container, cfg map[string]any, listenPort int, bad func(string, ...any)) {
	metricsPort, where := listenPort, "listen"
	if v, ok := get(cfg, "metrics_listen"); ok {
		str, isStr := v.(string)
		_, port, err := net.SplitHostPort(str)
		pn, perr := strconv.Atoi(port)
		switch {
		case !isStr || err != nil || perr != nil || pn < 1 || pn > 65535:
			bad("metrics_listen %v is not host:port", v)
			return
		case pn == listenPort:
			bad("metrics_listen port %d is the listen port; give the metrics listener a port of its own, or leave metrics_listen unset", pn)
			return
		case !containerPort(&corev1.PodSpec{Containers: []corev1.Container{*c}}, intstr.FromInt(pn)):
			bad("metrics_listen port %d is not a containerPort", pn)
		}
		metricsPort, where = pn, "metrics_listen"
	}
	if metricsPort == 0 {
		return
	}
	for _, sc := range scrapedContainerPorts(s, w, c) {
		if int(sc.port) != metricsPort {
			bad("%s endpoints[%d] scrapes container port %d, but /metrics is served on the %s port %d", sc.monitor, sc.index, sc.port, where, metricsPort)
		}
		if sc.path != "/metrics" {
			bad("%s endpoints[%d] scrapes path %q; Portcullis serves /metrics", sc.monitor, sc.index, sc.path)
		}
	}
}
