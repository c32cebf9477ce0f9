{{/*
Chart name, truncated to 63 characters.
*/}}
{{- define "cloudquota.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, plus the chart name unless the release name
already contains it. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "cloudquota.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "cloudquota.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "cloudquota.labels" -}}
helm.sh/chart: {{ include "cloudquota.chart" . }}
{{ include "cloudquota.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cloudquota
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable: never add anything that changes between releases).
*/}}
{{- define "cloudquota.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cloudquota.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "cloudquota.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cloudquota.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Lease name for leader election.
*/}}
{{- define "cloudquota.leaseName" -}}
{{- default (include "cloudquota.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Container image reference: repository:tag, or repository@digest when a digest is set.
*/}}
{{- define "cloudquota.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
PromQL selector of the operator's own scrape target.
*/}}
{{- define "cloudquota.operatorSelector" -}}
{{- if .Values.prometheusRule.operatorDown.selector }}
{{- .Values.prometheusRule.operatorDown.selector }}
{{- else }}
{{- printf "job=%q,namespace=%q" (include "cloudquota.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
Rules the operator needs on CloudQuotas, their Secrets and Events, wherever it watches them.
Keep in sync with what the operator calls; tests/chart.rs asserts there is no list/watch on
secrets and no wildcard.
*/}}
{{- define "cloudquota.watchRules" -}}
- apiGroups: ["cloudquota.io"]
  resources: ["cloudquotas"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["cloudquota.io"]
  resources: ["cloudquotas/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch", "list"]
{{- end }}

{{/*
Fail early on value combinations the schema cannot express.
*/}}
{{- define "cloudquota.validate" -}}
{{- if and .Values.capacityQuota.namespaces (not .Values.capacityQuota.enabled) }}
{{- fail "capacityQuota.namespaces requires capacityQuota.enabled=true" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: without it every replica polls and writes status" }}
{{- end }}
{{- if gt (float64 .Values.prometheusRule.usage.warningRatio) (float64 .Values.prometheusRule.usage.criticalRatio) }}
{{- fail "prometheusRule.usage.warningRatio must be less than or equal to prometheusRule.usage.criticalRatio" }}
{{- end }}
{{- end }}
