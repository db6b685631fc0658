{{- define "etcd-medic.labels" -}}
app.kubernetes.io/name: etcd-medic
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "etcd-medic.env" -}}
- name: ETCD_MEDIC_INVENTORY
  value: /etc/etcd-medic/inventory/inventory.yaml
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SLACK_BOT_TOKEN
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.slack }}, key: SLACK_BOT_TOKEN } }
- name: SLACK_SIGNING_SECRET
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.slack }}, key: SLACK_SIGNING_SECRET } }
- name: SLACK_APP_TOKEN
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.slack }}, key: SLACK_APP_TOKEN, optional: true } }
- name: ETCD_MEDIC_HMAC_KEY
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.slack }}, key: ETCD_MEDIC_HMAC_KEY } }
- name: REDIS_PASSWORD
  valueFrom: { secretKeyRef: { name: {{ .Values.secrets.redis }}, key: REDIS_PASSWORD } }
{{- if .Values.redis.caKey }}
- name: REDIS_TLS_CA
  value: /etc/etcd-medic/redis-ca/{{ .Values.redis.caKey }}
{{- end }}
{{- end -}}

{{/* Volumes every pod has: the inventory and, with a private Redis CA, that certificate. */}}
{{- define "etcd-medic.volumes" -}}
- name: inventory
  configMap: { name: {{ .Release.Name }}-inventory }
{{- if .Values.redis.caKey }}
- name: redis-ca
  secret: { secretName: {{ .Values.secrets.redis }}, defaultMode: 0440, items: [{ key: {{ .Values.redis.caKey }}, path: {{ .Values.redis.caKey }} }] }
{{- end }}
{{- end -}}

{{- define "etcd-medic.mounts" -}}
- { name: inventory, mountPath: /etc/etcd-medic/inventory, readOnly: true }
{{- if .Values.redis.caKey }}
- { name: redis-ca, mountPath: /etc/etcd-medic/redis-ca, readOnly: true }
{{- end }}
{{- end -}}

{{/*
Only workers reach the hosts and etcd: they alone mount the SSH keys, the etcd client
keys and kubeconfigs (0440, group fsGroup, so the non-root user reads them), and the backups.
*/}}
{{- define "etcd-medic.workerVolumes" -}}
- name: backups
  {{- if .Values.backups.existingClaim }}
  persistentVolumeClaim: { claimName: {{ .Values.backups.existingClaim }} }
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: files
  secret: { secretName: {{ .Values.secrets.files }}, defaultMode: 0440 }
{{- end -}}

{{- define "etcd-medic.workerMounts" -}}
- { name: files, mountPath: /etc/etcd-medic/secrets, readOnly: true }
- { name: backups, mountPath: /var/lib/etcd-medic/backups }
{{- end -}}

{{/* Pod-level: the user the container runs as, and the group that owns mounted secret files. */}}
{{- define "etcd-medic.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{- define "etcd-medic.securityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: { drop: [ALL] }
{{- end -}}

{{- define "etcd-medic.scrapeAnnotations" -}}
{{- if .Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.bot.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
