{{/* Names, labels and the pieces both Deployments share. */}}

{{- define "meet-telephony.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; suffixes (-worker, -gateway) stay within 63 characters. */}}
{{- define "meet-telephony.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "meet-telephony.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; `component` (worker | gateway) is optional. */}}
{{- define "meet-telephony.labels" -}}
{{- $root := .root -}}
helm.sh/chart: {{ include "meet-telephony.chart" $root }}
{{ include "meet-telephony.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: meet-telephony
{{- end }}

{{- define "meet-telephony.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meet-telephony.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "meet-telephony.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "meet-telephony.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meet-telephony.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret is never rendered here: it holds credentials, so it is created outside the chart. */}}
{{- define "meet-telephony.secretName" -}}
{{- required "secrets.existingSecret is required: create a Secret with LIVEKIT_API_KEY, LIVEKIT_API_SECRET, TELEPHONY_API_TOKEN, TELEPHONY_PIN_HASH_KEY and TELEPHONY_PAYLOAD_KEYS (see the chart's README.md), then pass --set secrets.existingSecret=<its name>" .Values.secrets.existingSecret }}
{{- end }}

{{/* The secret settings: each comes from the key of the same name of secrets.existingSecret, in
     the components that read it. `required`: always | enabled (when ROOM_TELEPHONY_ENABLED) |
     never. A required key missing from the Secret keeps the pod in CreateContainerConfigError
     (naming the key) instead of a crash loop; an optional one is left unset. */}}
{{- define "meet-telephony.secretSettings" -}}
LIVEKIT_API_KEY: {required: enabled, components: [worker, gateway]}
LIVEKIT_API_SECRET: {required: enabled, components: [worker, gateway]}
TELEPHONY_PIN_HASH_KEY: {required: enabled, components: [worker, gateway]}
TELEPHONY_PAYLOAD_KEYS: {required: enabled, components: [worker, gateway]}
TEMPORAL_API_KEY: {required: never, components: [worker, gateway]}
TELEPHONY_API_TOKEN: {required: always, components: [gateway]}
TELEPHONY_CODEC_TOKEN: {required: never, components: [gateway]}
{{- end }}

{{/* Keys that must come from the Secret, never from `config` (they would land in a ConfigMap). */}}
{{- define "meet-telephony.secretKeys" -}}
{{- keys (include "meet-telephony.secretSettings" . | fromYaml) | sortAlpha | join " " }}
{{- end }}

{{/* "true" when config.ROOM_TELEPHONY_ENABLED is true (as the service parses booleans). */}}
{{- define "meet-telephony.enabled" -}}
{{- has (lower (toString (default "false" .Values.config.ROOM_TELEPHONY_ENABLED))) (list "1" "true" "t" "yes" "y" "on") }}
{{- end }}

{{/* Keys the chart derives from other values (the probes and the Service depend on the ports). */}}
{{- define "meet-telephony.managedKeys" -}}
TEMPORAL_ADDRESS TEMPORAL_NAMESPACE LIVEKIT_URL LIVEKIT_API_URL TELEPHONY_GATEWAY_HOST TELEPHONY_GATEWAY_PORT TELEPHONY_WORKER_METRICS_PORT TEMPORAL_TLS_CLIENT_CERT_PATH TEMPORAL_TLS_CLIENT_KEY_PATH TEMPORAL_TLS_SERVER_CA_CERT_PATH TEMPORAL_TLS_SERVER_NAME
{{- end }}

{{/* Mistakes caught at render time rather than as a crash-looping pod. */}}
{{- define "meet-telephony.validate" -}}
{{- $secretKeys := splitList " " (include "meet-telephony.secretKeys" .) }}
{{- $managedKeys := splitList " " (include "meet-telephony.managedKeys" .) }}
{{- range $key, $value := .Values.config }}
{{- $upper := upper $key }}
{{- if has $upper $secretKeys }}
{{- fail (printf "config.%s is a secret: put it in the Secret named by secrets.existingSecret, not in values (they end up in a ConfigMap)" $key) }}
{{- end }}
{{- if has $upper $managedKeys }}
{{- fail (printf "config.%s is set by the chart: use temporal.*, livekit.url, gateway.port or worker.metricsPort instead" $key) }}
{{- end }}
{{- end }}
{{- $_ := required "temporal.address is required (host:port of the Temporal frontend)" .Values.temporal.address }}
{{- if and (eq (include "meet-telephony.enabled" .) "true") (not .Values.livekit.url) }}
{{- fail "livekit.url is required when config.ROOM_TELEPHONY_ENABLED is true" }}
{{- end }}
{{- with .Values.gateway.autoscaling }}
{{- if .enabled }}
{{- if not (dig "requests" "cpu" "" $.Values.gateway.resources) }}
{{- fail "gateway.autoscaling needs gateway.resources.requests.cpu (the CPU target is a share of it)" }}
{{- end }}
{{- if gt (int .minReplicas) (int .maxReplicas) }}
{{- fail (printf "gateway.autoscaling.minReplicas (%v) is above maxReplicas (%v)" .minReplicas .maxReplicas) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.gateway.ingress.enabled (not .Values.gateway.ingress.hosts) }}
{{- fail "gateway.ingress.enabled needs at least one entry in gateway.ingress.hosts" }}
{{- end }}
{{- end }}

{{/* Both components run as the image's non-root user, with nothing writable but /tmp. */}}
{{- define "meet-telephony.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "meet-telephony.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end }}

{{/* Every key of the ConfigMap: a new non-secret setting needs no chart change. */}}
{{- define "meet-telephony.envFrom" -}}
- configMapRef:
    name: {{ include "meet-telephony.fullname" . }}
    optional: false
{{- end }}

{{/* The secret settings `component` reads, each from its key of the Secret (named one by one, so
     that a key of the Secret the service does not know never becomes part of its environment). */}}
{{- define "meet-telephony.secretEnv" -}}
{{- $root := .root }}
{{- $secret := include "meet-telephony.secretName" $root }}
{{- $enabled := eq (include "meet-telephony.enabled" $root) "true" }}
{{- range $key, $setting := include "meet-telephony.secretSettings" $root | fromYaml }}
{{- if has $.component $setting.components }}
{{- $required := or (eq $setting.required "always") (and $enabled (eq $setting.required "enabled")) }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: {{ not $required }}
{{- end }}
{{- end }}
{{- end }}

{{- define "meet-telephony.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/temporal-tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "meet-telephony.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{/* A config change rolls the pods (envFrom is read only at container start). */}}
{{- define "meet-telephony.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{- define "meet-telephony.prometheusAnnotations" -}}
{{- if .root.Values.metrics.prometheusAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* Replicas of one component on different nodes (hard or soft), and on different zones (soft). */}}
{{- define "meet-telephony.topologySpread" -}}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ .root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "meet-telephony.selectorLabels" . | nindent 8 }}
  # Always soft: nodes without a zone label would otherwise be excluded.
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "meet-telephony.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{/* The pod-level fields both components share; `values` is .Values.worker or .Values.gateway. */}}
{{- define "meet-telephony.podCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "meet-telephony.serviceAccountName" $root }}
# Neither component talks to the Kubernetes API.
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- include "meet-telephony.podSecurityContext" $root | nindent 2 }}
{{- include "meet-telephony.topologySpread" . }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
volumes:
  {{- include "meet-telephony.volumes" $root | nindent 2 }}
{{- end }}
