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
{{- end -}}

{{- define "etcd-medic.volumes" -}}
- name: inventory
  configMap: { name: {{ .Release.Name }}-inventory }
- name: backups
  {{- if .Values.backups.existingClaim }}
  persistentVolumeClaim: { claimName: {{ .Values.backups.existingClaim }} }
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: files
  secret: { secretName: {{ .Values.secrets.files }}, defaultMode: 0400 }
{{- end -}}

{{- define "etcd-medic.mounts" -}}
- { name: inventory, mountPath: /etc/etcd-medic/inventory, readOnly: true }
- { name: files, mountPath: /etc/etcd-medic/secrets, readOnly: true }
- { name: backups, mountPath: /var/lib/etcd-medic/backups }
{{- end -}}

{{- define "etcd-medic.securityContext" -}}
runAsNonRoot: true
runAsUser: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: { drop: [ALL] }
{{- end -}}
