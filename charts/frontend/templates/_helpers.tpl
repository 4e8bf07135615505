{{/*
Name of the chart, for the app.kubernetes.io/name label.
*/}}
{{- define "frontend.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of every object: the release name, so the Service of release "backend"
is reachable in its namespace as http://backend:8080, which is what the
frontend's BACKEND_URL defaults to.
*/}}
{{- define "frontend.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select this release's pods; they must never change after the
first install because a Deployment's selector is immutable.
*/}}
{{- define "frontend.selectorLabels" -}}
app.kubernetes.io/name: {{ include "frontend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels for every object.
*/}}
{{- define "frontend.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "frontend.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/component: {{ .Values.component }}
app.kubernetes.io/part-of: shop
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The image reference: repository@digest when image.digest is set (the tag is
then only for people: labels and APP_VERSION), else repository:tag. The tag
is required either way: an empty tag would silently mean "latest" and defeat
promotion by tag.
*/}}
{{- define "frontend.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- $tag := required "image.tag is required (set it in values-<env>.yaml)" .Values.image.tag | toString }}
{{- with .Values.image.digest }}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .) }}
{{- fail (printf "image.digest %q is not sha256: followed by 64 lowercase hex digits" .) }}
{{- end }}
{{- printf "%s@%s" $repo . }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}
