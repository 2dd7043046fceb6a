{{- define "bulwark.name" -}}{{ .Release.Name }}{{- end -}}
{{- define "bulwark.labels" -}}
app.kubernetes.io/name: bulwark
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "bulwark.selector" -}}
app.kubernetes.io/name: bulwark
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "bulwark.image" -}}
{{- if .Values.image.digest -}}{{ .Values.image.repository }}@{{ .Values.image.digest }}{{- else -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}
{{- end -}}
{{/* The pod's and the container's hardening, shared by the Deployment and the migration Job. */}}
{{- define "bulwark.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{- define "bulwark.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  privileged: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  runAsUser: 65532
  capabilities: {drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{/* The Secret's keys a workload needs, and no others: serving pods never see the owner
     role's URL, the migration Job never sees Redis or the metrics token. Call with
     (dict "ctx" . "keys" (list …)). */}}
{{- define "bulwark.secretVolume" -}}
- name: secrets
  secret:
    secretName: {{ .ctx.Values.existingSecret }}
    defaultMode: 0400
    items:
      {{- range .keys }}
      - {key: {{ . }}, path: {{ . }}}
      {{- end }}
{{- end -}}
{{/* checkov's one skip, with its reason, while the image is pinned by tag only. */}}
{{- define "bulwark.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_43=the digest is set per deployment through image.digest; the chart cannot know it
{{- end -}}
