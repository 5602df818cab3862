{{/* The chart name. */}}
{{- define "ejbca-issuer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name, suffixed with the chart name unless it contains it. */}}
{{- define "ejbca-issuer.fullname" -}}
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

{{- define "ejbca-issuer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "ejbca-issuer.labels" -}}
helm.sh/chart: {{ include "ejbca-issuer.chart" . }}
{{ include "ejbca-issuer.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ejbca-issuer.tag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the manager's pods. */}}
{{- define "ejbca-issuer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ejbca-issuer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ejbca-issuer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ejbca-issuer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ejbca-issuer.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.clusterResourceNamespace }}
{{- end }}

{{- define "ejbca-issuer.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{- define "ejbca-issuer.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The image reference: by digest when one is given, else by tag. */}}
{{- define "ejbca-issuer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "ejbca-issuer.tag" .) }}
{{- end }}
{{- end }}

{{/* The name of the approver ClusterRole: cert-manager's convention for external issuers. */}}
{{- define "ejbca-issuer.approverName" -}}
cert-manager-controller-approve:ejbca-issuer-certctl-io
{{- end }}

{{/* The generated RBAC rules (files/rbac-rules.yaml, written by hack/chartgen from config/rbac/role.yaml). */}}
{{- define "ejbca-issuer.rbacRules" -}}
{{- $rules := .Files.Get "files/rbac-rules.yaml" | fromYaml }}
{{- if or (not $rules) (hasKey $rules "Error") }}
{{- fail "files/rbac-rules.yaml is missing or invalid: run make manifests" }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
