{{/*
Names, labels and the pipeline declaration shared by every template.
*/}}

{{- define "osmose.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "osmose.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "osmose.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "osmose.labels" -}}
helm.sh/chart: {{ include "osmose.chart" . }}
app.kubernetes.io/name: {{ include "osmose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: osmose
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "osmose.selectorLabels" -}}
app.kubernetes.io/name: {{ include "osmose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector of one component (a stage or a backend): dict "root" $ "component" name */}}
{{- define "osmose.componentSelector" -}}
{{ include "osmose.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "osmose.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "osmose.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "osmose.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
The pipeline as the code declares it (pipeline.yaml, generated from `osmose describe --json`).
Returns YAML; use with fromYaml.
*/}}
{{- define "osmose.pipeline" -}}
{{- .Files.Get "pipeline.yaml" -}}
{{- end -}}

{{/* Topic of one stage and lane: dict "root" $ "stage" name "lane" high|bulk; the rule of osmose.bus.topics.input_topic */}}
{{- define "osmose.inputTopic" -}}
{{- printf "%s.%s.%s" .root.Values.kafka.topicPrefix .stage .lane -}}
{{- end -}}

{{/* Consumer group of one stage: osmose.bus.topics.consumer_group */}}
{{- define "osmose.consumerGroup" -}}
{{- printf "%s.%s" .root.Values.kafka.topicPrefix .stage -}}
{{- end -}}

{{/*
Settings of one stage: stageDefaults deep-merged with stages.<name>.
dict "root" $ "stage" name -> YAML
*/}}
{{- define "osmose.stageValues" -}}
{{- $own := index (.root.Values.stages | default dict) .stage | default dict -}}
{{- toYaml (mustMergeOverwrite (deepCopy .root.Values.stageDefaults) (deepCopy $own)) -}}
{{- end -}}

{{/*
Who scales a stage: keda, hpa or none (autoscaling.mode, or the stage's own autoscaling.mode).
dict "root" $ "values" stageValues
*/}}
{{- define "osmose.stageScaler" -}}
{{- $mode := .values.autoscaling.mode | default .root.Values.autoscaling.mode -}}
{{- $mode -}}
{{- end -}}

{{/* Pod security context (strict: non-root numeric user, seccomp RuntimeDefault). */}}
{{- define "osmose.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context: read-only root, no privilege escalation, no capabilities. */}}
{{- define "osmose.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Name of the Secret the chart renders for the Kafka TLS CA / SASL settings of KEDA. */}}
{{- define "osmose.kedaAuthName" -}}
{{- printf "%s-kafka" (include "osmose.fullname" .) -}}
{{- end -}}

{{/* Whether KEDA needs a TriggerAuthentication for Kafka. */}}
{{- define "osmose.kafkaNeedsAuth" -}}
{{- if or .Values.kafka.tls.enabled .Values.kafka.sasl.enabled -}}true{{- end -}}
{{- end -}}

{{/*
The backend serving one endpoint, when the chart runs it: dict "root" $ "backend" name -> its in-cluster URL
(the router's ${llm_url}, ${vision_url}, ${tei_url}).
*/}}
{{- define "osmose.backendURL" -}}
{{- $b := index .root.Values.backends .backend -}}
{{- $host := printf "%s-%s" (include "osmose.fullname" .root) .backend -}}
{{- if eq $b.engine "vllm" -}}
{{- printf "http://%s.%s.svc:%d/v1" $host .root.Release.Namespace (int $b.port) -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%d" $host .root.Release.Namespace (int $b.port) -}}
{{- end -}}
{{- end -}}

{{/* Component name of a backend (its Deployment/InferenceService and Service). */}}
{{- define "osmose.backendName" -}}
{{- printf "%s-%s" (include "osmose.fullname" .root) .backend -}}
{{- end -}}

{{/* The Deployment KEDA scales for a backend: the chart's own, or KServe's predictor (RawDeployment). */}}
{{- define "osmose.backendWorkload" -}}
{{- if eq .root.Values.backends.mode "kserve" -}}
{{- printf "%s-predictor" (include "osmose.backendName" .) -}}
{{- else -}}
{{- include "osmose.backendName" . -}}
{{- end -}}
{{- end -}}

{{/* Security settings of a KEDA Kafka trigger's metadata (the secrets come from the TriggerAuthentication). */}}
{{- define "osmose.kafkaTriggerSecurity" -}}
{{- if .Values.kafka.sasl.enabled }}
sasl: {{ get (dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512") .Values.kafka.sasl.mechanism }}
{{- end }}
{{- if .Values.kafka.tls.enabled }}
tls: enable
{{- end }}
{{- end -}}

{{/*
Durability of the topics Osmose creates and whether it creates them, as OSMOSE_* "NAME: value" lines (nothing when both are 0 and the Job provisions,
the broker's defaults). min.insync.replicas above the replication factor would refuse every write.
*/}}
{{- define "osmose.kafkaDurability" -}}
{{- $rf := int .Values.kafka.replicationFactor -}}
{{- $isr := int .Values.kafka.minInsyncReplicas -}}
{{- if and $rf $isr (gt $isr $rf) -}}
{{- fail (printf "kafka.minInsyncReplicas (%d) is above kafka.replicationFactor (%d): with acks=all every write would be refused" $isr $rf) -}}
{{- end -}}
{{- if $rf }}
OSMOSE_KAFKA_REPLICATION_FACTOR: {{ $rf | quote }}
{{- end }}
{{- if $isr }}
OSMOSE_KAFKA_MIN_INSYNC_REPLICAS: {{ $isr | quote }}
{{- end }}
{{- if ne .Values.kafka.topics.provisioner "job" }}
OSMOSE_KAFKA_CREATE_TOPICS: "false"
{{- end }}
{{- end -}}
