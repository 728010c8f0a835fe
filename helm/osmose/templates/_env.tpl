{{/*
What every Osmose container (stages, topics Job, helm test) is configured with: the settings
ConfigMap, the secrets by reference (never copied into the chart), and the mounts they need.
*/}}

{{- define "osmose.envFrom" -}}
- configMapRef:
    name: {{ include "osmose.fullname" . }}-config
{{- end -}}

{{- define "osmose.secretEnv" -}}
{{- $v := .Values -}}
- name: OSMOSE_GRAPH_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "graph.existingSecret is required: a Secret with the Neo4j password" $v.graph.existingSecret }}
      key: {{ $v.graph.passwordKey }}
{{- with $v.qdrant.existingSecret }}
- name: OSMOSE_QDRANT_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $v.qdrant.apiKeyKey }}
{{- end }}
{{- if and (eq $v.blobStore.type "s3") $v.blobStore.s3.existingSecret }}
- name: OSMOSE_BLOB_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $v.blobStore.s3.existingSecret }}
      key: {{ $v.blobStore.s3.accessKeyIdKey }}
- name: OSMOSE_BLOB_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.blobStore.s3.existingSecret }}
      key: {{ $v.blobStore.s3.secretAccessKeyKey }}
{{- end }}
{{- if $v.kafka.sasl.enabled }}
- name: OSMOSE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required when kafka.sasl.enabled" $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.usernameKey }}
- name: OSMOSE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.passwordKey }}
{{- end }}
{{- end -}}

{{- define "osmose.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/osmose/data
- name: router
  mountPath: /etc/osmose/router
  readOnly: true
{{- if eq .Values.blobStore.type "pvc" }}
- name: blobs
  mountPath: /var/lib/osmose/blobs
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/osmose/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* dict "root" $ "tmp" sizeLimit "data" sizeLimit */}}
{{- define "osmose.volumes" -}}
{{- $v := .root.Values -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmp }}
- name: data
  emptyDir:
    sizeLimit: {{ .data }}
- name: router
  configMap:
    name: {{ include "osmose.fullname" .root }}-router
{{- if eq $v.blobStore.type "pvc" }}
- name: blobs
  persistentVolumeClaim:
    claimName: {{ required "blobStore.pvc.claimName is required with blobStore.type pvc (a ReadWriteMany claim)" $v.blobStore.pvc.claimName }}
{{- end }}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ $v.kafka.tls.caSecret }}
    items:
      - key: {{ $v.kafka.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}
