{{/* Chart name, overridable. */}}
{{- define "chatbackend-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. When the release name already contains
the chart name it is not repeated (release "chatbackend-operator" gives
"chatbackend-operator", not "chatbackend-operator-chatbackend-operator").
*/}}
{{- define "chatbackend-operator.fullname" -}}
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

{{- define "chatbackend-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "chatbackend-operator.labels" -}}
helm.sh/chart: {{ include "chatbackend-operator.chart" . }}
{{ include "chatbackend-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chatbackend
{{- end }}

{{/* Selector labels: never change them, a Deployment's selector is immutable. */}}
{{- define "chatbackend-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chatbackend-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "chatbackend-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chatbackend-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "chatbackend-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The chat-apiserver image of ChatBackends without spec.image: the operator's
own image unless overridden, because both binaries ship in one image and the
API's migrations are versioned with it.
*/}}
{{- define "chatbackend-operator.defaultAPIServerImage" -}}
{{- default (include "chatbackend-operator.image" .) .Values.defaultAPIServerImage }}
{{- end }}
