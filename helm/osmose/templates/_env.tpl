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
{{- with $v.modelAuth.existingSecret }}
{{- range $env, $key := dict "OSMOSE_LLM_API_KEY" $v.modelAuth.llmKey "OSMOSE_VISION_API_KEY" $v.modelAuth.visionKey "OSMOSE_TEI_API_KEY" $v.modelAuth.teiKey }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.modelAuth.existingSecret }}
      key: {{ $key }}
{{- end }}
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
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  mountPath: /etc/osmose/kafka-client
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
{{- if and $v.kafka.tls.enabled $v.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ $v.kafka.tls.clientCertSecret }}
    defaultMode: 288
    items:
      - key: {{ $v.kafka.tls.clientCertKey }}
        path: tls.crt
      - key: {{ $v.kafka.tls.clientKeyKey }}
        path: tls.key
{{- end }}
{{- end -}}

{{/*
Transport security and credentials of a stage's listeners (libs/osmose/hosts/service_listeners.py):
the TLS files of security.tls.existingSecret, and the API keys file and/or JWT issuer the public
listener checks every call against. Fails the render when a stage would have nothing to check.
*/}}
{{- define "osmose.securityEnv" -}}
{{- $sec := .Values.security -}}
{{- $keys := $sec.auth.apiKeys.existingSecret -}}
{{- $jwt := $sec.auth.jwt -}}
{{- if not (or $keys $jwt.issuer) }}
{{- fail "security.auth: configure API keys (security.auth.apiKeys.existingSecret, a Secret with the hashed keys file) and/or a JWT issuer (security.auth.jwt.issuer with jwksUrl or jwksConfigMap): the public listeners refuse to start without credentials to check" }}
{{- end }}
{{- if and $jwt.issuer (not (or $jwt.jwksUrl $jwt.jwksConfigMap)) }}
{{- fail "security.auth.jwt.issuer needs the issuer's keys: security.auth.jwt.jwksUrl or security.auth.jwt.jwksConfigMap" }}
{{- end }}
{{- if and $jwt.jwksUrl $jwt.jwksConfigMap }}
{{- fail "security.auth.jwt: give jwksUrl or jwksConfigMap, not both" }}
{{- end -}}
- name: OSMOSE_TLS_CERT
  value: /etc/osmose/tls/tls.crt
- name: OSMOSE_TLS_KEY
  value: /etc/osmose/tls/tls.key
- name: OSMOSE_TLS_CA
  value: /etc/osmose/tls/ca.crt
{{- if $keys }}
- name: OSMOSE_API_KEYS_FILE
  value: /etc/osmose/api-keys/keys
{{- end }}
{{- if $jwt.issuer }}
- name: OSMOSE_JWT_ISSUER
  value: {{ $jwt.issuer | quote }}
- name: OSMOSE_JWT_AUDIENCE
  value: {{ $jwt.audience | quote }}
{{- if $jwt.jwksConfigMap }}
- name: OSMOSE_JWT_JWKS_FILE
  value: /etc/osmose/jwks/jwks.json
{{- else }}
- name: OSMOSE_JWT_JWKS_URL
  value: {{ $jwt.jwksUrl | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "osmose.securityVolumeMounts" -}}
- name: tls
  mountPath: /etc/osmose/tls
  readOnly: true
{{- if .Values.security.auth.apiKeys.existingSecret }}
- name: api-keys
  mountPath: /etc/osmose/api-keys
  readOnly: true
{{- end }}
{{- if and .Values.security.auth.jwt.issuer .Values.security.auth.jwt.jwksConfigMap }}
- name: jwks
  mountPath: /etc/osmose/jwks
  readOnly: true
{{- end }}
{{- end -}}

{{- define "osmose.securityVolumes" -}}
{{- $sec := .Values.security -}}
- name: tls
  secret:
    secretName: {{ required "security.tls.existingSecret is required: a Secret with tls.crt, tls.key and ca.crt (e.g. from a cert-manager Certificate; see k8s/cert-manager/certificate.yaml)" $sec.tls.existingSecret }}
    defaultMode: 288   # 0440: the user and the pod's fsGroup read it, nobody writes it
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      - {key: ca.crt, path: ca.crt}
{{- with $sec.auth.apiKeys.existingSecret }}
- name: api-keys
  secret:
    secretName: {{ . }}
    defaultMode: 288
    items:
      - {key: {{ $sec.auth.apiKeys.key }}, path: keys}
{{- end }}
{{- if and $sec.auth.jwt.issuer $sec.auth.jwt.jwksConfigMap }}
- name: jwks
  configMap:
    name: {{ $sec.auth.jwt.jwksConfigMap }}
    items:
      - {key: {{ $sec.auth.jwt.jwksKey }}, path: jwks.json}
{{- end }}
{{- end -}}
