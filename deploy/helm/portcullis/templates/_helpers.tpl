{{/*
Shared helpers: names and labels, the paths the pod sees, the portcullis.toml
renderer (values -> TOML) and the checks that refuse inconsistent values
before anything is applied.
*/}}

{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: auth-proxy
{{- end }}

{{- define "portcullis.labels" -}}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/part-of: portcullis
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portcullis.secretName" -}}
{{- default (include "portcullis.fullname" .) .Values.secrets.name }}
{{- end }}

{{- define "portcullis.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The auth host: the host of config.public_url. */}}
{{- define "portcullis.authHost" -}}
{{- (urlParse .Values.config.public_url).hostname }}
{{- end }}

{{- define "portcullis.tlsSecretName" -}}
{{- if .Values.certificate.enabled }}
{{- default (printf "%s-auth-tls" (include "portcullis.fullname" .)) .Values.certificate.secretName }}
{{- else }}
{{- .Values.traefik.ingressRoute.tlsSecretName }}
{{- end }}
{{- end }}

{{/* Session cookie name as Portcullis will use it (its default is _portcullis). */}}
{{- define "portcullis.cookieName" -}}
{{- $s := .Values.config.session | default dict }}
{{- default "_portcullis" $s.cookie_name }}
{{- end }}

{{/* Container port name the probes and the metrics Service port use. */}}
{{- define "portcullis.metricsPortName" -}}
{{- if .Values.metrics.listener.enabled }}metrics{{ else }}http{{ end }}
{{- end }}

{{/* Container port number /metrics is served on. */}}
{{- define "portcullis.metricsContainerPort" -}}
{{- if .Values.metrics.listener.enabled }}{{ .Values.metrics.listener.port }}{{ else }}{{ .Values.containerPort }}{{ end }}
{{- end }}

{{- define "portcullis.secretDir" -}}/run/secrets/portcullis{{- end }}
{{- define "portcullis.caDir" -}}/etc/portcullis/ca{{- end }}
{{- define "portcullis.configFile" -}}/etc/portcullis/portcullis.toml{{- end }}

{{/*
The configuration as Portcullis reads it: values.config plus the keys the
chart owns (listeners, file paths, the session store). Returns YAML of a
dict; portcullis.toml renders it.
*/}}
{{- define "portcullis.configDict" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $owned := list "listen" "metrics_listen" "tls_cert_file" "tls_key_file" }}
{{- range $owned }}
{{- if hasKey $cfg . }}
{{- fail (printf "config.%s is set by the chart (containerPort, metrics.listener); remove it from config" .) }}
{{- end }}
{{- end }}
{{- $oidc := deepCopy (get $cfg "oidc" | default dict) }}
{{- $session := deepCopy (get $cfg "session" | default dict) }}
{{- range list "client_secret_file" "ca_file" }}
{{- if hasKey $oidc . }}
{{- fail (printf "config.oidc.%s is set by the chart (secrets.keys, caBundle); remove it from config" .) }}
{{- end }}
{{- end }}
{{- range list "cookie_secret_file" "previous_cookie_secrets_file" "store" "redis_url" "redis_password_file" "redis_ca_file" "redis_mode" "redis_urls" "redis_sentinel_master" "redis_sentinel_password_file" }}
{{- if hasKey $session . }}
{{- fail (printf "config.session.%s is set by the chart (secrets.keys, sessionStore); remove it from config" .) }}
{{- end }}
{{- end }}
{{- if hasKey $oidc "client_secret" }}
{{- fail "config.oidc.client_secret would put the secret into a ConfigMap: store it in the Secret under secrets.keys.clientSecret" }}
{{- end }}
{{- range list "cookie_secret" "previous_cookie_secrets" }}
{{- if hasKey $session . }}
{{- fail (printf "config.session.%s would put a secret into a ConfigMap: store it in the Secret (secrets.keys)" .) }}
{{- end }}
{{- end }}
{{- $secretDir := include "portcullis.secretDir" . }}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%v" .Values.containerPort) }}
{{- if .Values.metrics.listener.enabled }}
{{- $_ := set $cfg "metrics_listen" (printf "0.0.0.0:%v" .Values.metrics.listener.port) }}
{{- end }}
{{- $_ := set $oidc "client_secret_file" (printf "%s/%s" $secretDir .Values.secrets.keys.clientSecret) }}
{{- if .Values.caBundle.enabled }}
{{- $_ := set $oidc "ca_file" (printf "%s/%s" (include "portcullis.caDir" .) .Values.caBundle.key) }}
{{- end }}
{{- $_ := set $session "cookie_secret_file" (printf "%s/%s" $secretDir .Values.secrets.keys.cookieSecret) }}
{{- if .Values.secrets.keys.previousCookieSecrets }}
{{- $_ := set $session "previous_cookie_secrets_file" (printf "%s/%s" $secretDir .Values.secrets.keys.previousCookieSecrets) }}
{{- end }}
{{- $_ := set $session "store" .Values.sessionStore.type }}
{{- if eq .Values.sessionStore.type "redis" }}
{{- $r := .Values.sessionStore.redis }}
{{- if eq $r.mode "standalone" }}
{{- $_ := set $session "redis_url" $r.url }}
{{- else }}
{{- $_ := set $session "redis_mode" $r.mode }}
{{- $_ := set $session "redis_urls" $r.urls }}
{{- end }}
{{- if eq $r.mode "sentinel" }}
{{- $_ := set $session "redis_sentinel_master" $r.sentinelMaster }}
{{- if .Values.secrets.keys.redisSentinelPassword }}
{{- $_ := set $session "redis_sentinel_password_file" (printf "%s/%s" $secretDir .Values.secrets.keys.redisSentinelPassword) }}
{{- end }}
{{- end }}
{{- if .Values.secrets.keys.redisPassword }}
{{- $_ := set $session "redis_password_file" (printf "%s/%s" $secretDir .Values.secrets.keys.redisPassword) }}
{{- end }}
{{- if .Values.sessionStore.redis.caFromBundle }}
{{- $_ := set $session "redis_ca_file" (printf "%s/%s" (include "portcullis.caDir" .) .Values.caBundle.key) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "oidc" $oidc }}
{{- $_ := set $cfg "session" $session }}
{{- toYaml $cfg }}
{{- end }}

{{/*
TOML rendering. Helm reads numbers from values files as floats, and
toToml would write 2048 as 2048.0, which an integer key refuses; these
templates write whole numbers as integers, strings as TOML basic strings
(JSON string escapes are valid TOML ones), skip nulls, and write lists of
tables as [[arrays of tables]]. Sections come in config/example.toml's
order, [[rules]] last.
*/}}
{{- define "portcullis.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "portcullis.toml.value" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if kindIs "float64" $v }}{{ if eq (floor $v) $v }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) }}{{ $v }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "portcullis.toml.value" $e }}{{ end }}]
{{- else if kindIs "map" $v }}{ {{- $first := true }}{{ range $k, $e := $v }}{{ if not (kindIs "invalid" $e) }}{{ if not $first }},{{ end }}{{ $first = false }} {{ include "portcullis.toml.key" $k }} = {{ include "portcullis.toml.value" $e }}{{ end }}{{ end }} }
{{- else }}{{ fail (printf "portcullis.toml: cannot write a %s value" (kindOf $v)) }}
{{- end }}
{{- end }}

{{/* A list of tables (non-empty, every element a map) becomes [[name]]. */}}
{{- define "portcullis.toml.isTables" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) }}
{{- $all := true }}
{{- range . }}{{ if not (kindIs "map" .) }}{{ $all = false }}{{ end }}{{ end }}
{{- if $all }}true{{ end }}
{{- end }}
{{- end }}

{{/*
One table: {path: "a.b" or "", table: dict}. Plain keys first ("name"
leading, so a rule reads from its name), then sub-tables.
*/}}
{{- define "portcullis.toml.table" -}}
{{- $path := .path }}
{{- with .table.name }}{{ if kindIs "string" . }}
name = {{ toJson . }}
{{- end }}{{ end }}
{{- range $k, $v := .table }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (include "portcullis.toml.isTables" $v) (and (eq $k "name") (kindIs "string" $v))) }}
{{ include "portcullis.toml.key" $k }} = {{ include "portcullis.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- $sub := ternary (include "portcullis.toml.key" $k) (printf "%s.%s" $path (include "portcullis.toml.key" $k)) (eq $path "") }}
{{- if kindIs "map" $v }}

[{{ $sub }}]
{{- include "portcullis.toml.table" (dict "path" $sub "table" $v) }}
{{- else if include "portcullis.toml.isTables" $v }}
{{- range $v }}

[[{{ $sub }}]]
{{- include "portcullis.toml.table" (dict "path" $sub "table" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The whole file, from portcullis.configDict. */}}
{{- define "portcullis.toml" -}}
{{- $cfg := include "portcullis.configDict" . | fromYaml }}
{{- $top := dict }}
{{- $sections := list "oidc" "session" "redirect" "authz" "headers" "bearer" "pages" }}
{{- range $k, $v := $cfg }}
{{- if not (or (has $k $sections) (eq $k "rules")) }}
{{- $_ := set $top $k $v }}
{{- end }}
{{- end }}
{{- include "portcullis.toml.table" (dict "path" "" "table" $top) }}
{{- range $sections }}
{{- if hasKey $cfg . }}
{{- $t := get $cfg . }}
{{- if not (kindIs "map" $t) }}
{{- fail (printf "config.%s must be a map of keys (portcullis.toml's [%s] section)" . .) }}
{{- end }}

[{{ . }}]
{{- include "portcullis.toml.table" (dict "path" . "table" $t) }}
{{- end }}
{{- end }}
{{- with $cfg.rules }}
{{- if not (include "portcullis.toml.isTables" .) }}
{{- fail "config.rules must be a list of rules (maps with name, paths, action...)" }}
{{- end }}
{{- range . }}

[[rules]]
{{- include "portcullis.toml.table" (dict "path" "rules" "table" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checks across values, run by every template that depends on them (fail
stops the whole rendering with the message).
*/}}
{{- define "portcullis.validate" -}}
{{- $v := .Values }}
{{- if and (not $v.image.digest) (eq (toString $v.image.tag) "latest") }}
{{- fail "image.tag latest is not a version: pin a tag (or image.digest)" }}
{{- end }}
{{- if not (has $v.sessionStore.type (list "cookie" "redis")) }}
{{- fail (printf "sessionStore.type %q: use cookie or redis" $v.sessionStore.type) }}
{{- end }}
{{- $r := $v.sessionStore.redis }}
{{- if eq $v.sessionStore.type "redis" }}
{{- if not (has $r.mode (list "standalone" "sentinel" "cluster")) }}
{{- fail (printf "sessionStore.redis.mode %q: use standalone, sentinel or cluster" $r.mode) }}
{{- end }}
{{- if and (eq $r.mode "standalone") (not $r.url) }}
{{- fail "sessionStore.type redis needs sessionStore.redis.url (rediss://HOST:6379 for TLS)" }}
{{- end }}
{{- if and (ne $r.mode "standalone") (not $r.urls) }}
{{- fail (printf "sessionStore.redis.mode %s needs sessionStore.redis.urls (the %s)" $r.mode (ternary "Sentinels" "cluster's seed nodes" (eq $r.mode "sentinel"))) }}
{{- end }}
{{- if and (eq $r.mode "sentinel") (not $r.sentinelMaster) }}
{{- fail "sessionStore.redis.mode sentinel needs sessionStore.redis.sentinelMaster (the name the Sentinels monitor)" }}
{{- end }}
{{- end }}
{{- if and (eq $v.sessionStore.type "redis") $v.sessionStore.redis.caFromBundle (not $v.caBundle.enabled) }}
{{- fail "sessionStore.redis.caFromBundle needs caBundle.enabled (or set caFromBundle false to trust the system roots)" }}
{{- end }}
{{- if not (has $v.secrets.source (list "existing" "sealed")) }}
{{- fail (printf "secrets.source %q: use existing or sealed" $v.secrets.source) }}
{{- end }}
{{- if eq $v.secrets.source "sealed" }}
{{- $need := list $v.secrets.keys.clientSecret $v.secrets.keys.cookieSecret }}
{{- if and (eq $v.sessionStore.type "redis") $v.secrets.keys.redisPassword }}
{{- $need = append $need $v.secrets.keys.redisPassword }}
{{- end }}
{{- if and (eq $v.sessionStore.type "redis") (eq $r.mode "sentinel") $v.secrets.keys.redisSentinelPassword }}
{{- $need = append $need $v.secrets.keys.redisSentinelPassword }}
{{- end }}
{{- if $v.secrets.keys.previousCookieSecrets }}
{{- $need = append $need $v.secrets.keys.previousCookieSecrets }}
{{- end }}
{{- range $need }}
{{- if not (hasKey $v.secrets.sealed.encryptedData .) }}
{{- fail (printf "secrets.source sealed: secrets.sealed.encryptedData has no %q (kubeseal --raw its value)" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $v.config.public_url }}
{{- fail "config.public_url is required (the URL browsers reach Portcullis at)" }}
{{- end }}
{{- $tp := $v.config.trusted_proxies | default list }}
{{- if eq (len $tp) 0 }}
{{- fail "config.trusted_proxies must not be empty: anyone reaching the pod could ask for decisions (Linkerd: [\"127.0.0.1/32\", \"::1/128\"]; otherwise Traefik's pod CIDR)" }}
{{- end }}
{{- if not $v.linkerd.enabled }}
{{- $loopback := true }}
{{- range $tp }}{{ if not (or (hasPrefix "127." .) (hasPrefix "::1/" .)) }}{{ $loopback = false }}{{ end }}{{ end }}
{{- if $loopback }}
{{- fail "config.trusted_proxies is loopback only, which without Linkerd refuses every check: list Traefik's pod CIDR (docs/deploy.md, \"Without Linkerd\")" }}
{{- end }}
{{- end }}
{{- if and $v.metrics.listener.enabled (eq (int $v.metrics.listener.port) (int $v.containerPort)) }}
{{- fail "metrics.listener.port must differ from containerPort" }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled $v.autoscaling.enabled (le (int $v.autoscaling.minReplicas) (int $v.podDisruptionBudget.minAvailable)) }}
{{- fail "autoscaling.minReplicas must be above podDisruptionBudget.minAvailable, or node drains block" }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not $v.autoscaling.enabled) (le (int $v.replicaCount) (int $v.podDisruptionBudget.minAvailable)) }}
{{- fail "replicaCount must be above podDisruptionBudget.minAvailable, or node drains block (disable the PDB for a single replica)" }}
{{- end }}
{{- if and $v.traefik.ingressRoute.enabled $v.traefik.ingressRoute.tls (not $v.certificate.enabled) (not $v.traefik.ingressRoute.tlsSecretName) }}
{{- fail "traefik.ingressRoute.tls without certificate.enabled needs traefik.ingressRoute.tlsSecretName" }}
{{- end }}
{{- if and (hasPrefix "https://" $v.config.public_url) (ne (toString (dig "session" "cookie_secure" true $v.config)) "true") }}
{{- fail "config.public_url is https: keep config.session.cookie_secure true" }}
{{- end }}
{{- end }}
