{{/*
Model backends (vLLM, TEI): placement on a GPU pool and the engine container, shared by the
plain Deployment and the KServe ServingRuntime/InferenceService forms.
*/}}

{{/* The gpuPools entry of a backend, as YAML ({} on CPU nodes). dict "root" $ "name" backend */}}
{{- define "osmose.backendPool" -}}
{{- $b := index .root.Values.backends .name -}}
{{- if $b.pool -}}
{{- $pool := index (.root.Values.gpuPools | default dict) $b.pool -}}
{{- if not $pool -}}
{{- fail (printf "backends.%s.pool is %q but gpuPools has no such entry (known: %s)" .name $b.pool (keys (.root.Values.gpuPools | default dict) | sortAlpha | join ", ")) -}}
{{- end -}}
{{- toYaml $pool -}}
{{- else if eq $b.engine "vllm" -}}
{{- fail (printf "backends.%s runs vLLM, which needs a GPU: set backends.%s.pool to one of gpuPools" .name .name) -}}
{{- else -}}
{{- toYaml dict -}}
{{- end -}}
{{- end -}}

{{/* Pod-level placement keys (nodeSelector, tolerations, runtimeClassName, priorityClassName). */}}
{{- define "osmose.backendPlacement" -}}
{{- $pool := include "osmose.backendPool" . | fromYaml -}}
{{- if $pool }}
{{- $selector := deepCopy ($pool.nodeSelector | default dict) -}}
{{- if $pool.capacityType }}{{- $_ := set $selector "karpenter.sh/capacity-type" $pool.capacityType -}}{{- end }}
nodeSelector:
  {{- toYaml $selector | nindent 2 }}
{{- with $pool.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pool.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- with $pool.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod annotations of a backend: Karpenter must not consolidate a node while a model serves. */}}
{{- define "osmose.backendPodAnnotations" -}}
{{- $pool := include "osmose.backendPool" . | fromYaml -}}
{{- if and $pool $pool.doNotDisrupt }}
karpenter.sh/do-not-disrupt: "true"
{{- end }}
{{- end -}}

{{/* Container resources: the values' plus the pool's GPU resource. */}}
{{- define "osmose.backendResources" -}}
{{- $b := index .root.Values.backends .name -}}
{{- $pool := include "osmose.backendPool" . | fromYaml -}}
{{- $res := deepCopy $b.resources -}}
{{- if $pool }}
{{- $limits := $res.limits | default dict -}}
{{- $_ := set $limits $pool.resourceName (int $b.gpus) -}}
{{- $_ := set $res "limits" $limits -}}
{{- end }}
{{- toYaml $res -}}
{{- end -}}

{{/* Engine command and arguments. */}}
{{- define "osmose.backendCommand" -}}
{{- $b := index .root.Values.backends .name -}}
{{- if eq $b.engine "vllm" }}
command: ["vllm", "serve"]
args:
  - {{ $b.model | quote }}
  - --host=0.0.0.0
  - --port={{ $b.port }}
  - --served-model-name={{ $b.model }}
  {{- range $b.args }}
  - {{ . | quote }}
  {{- end }}
{{- else }}
command: ["text-embeddings-router"]
args:
  - --model-id={{ $b.model }}
  - --hostname=0.0.0.0
  - --port={{ $b.port }}
  {{- range $b.args }}
  - {{ . | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "osmose.backendEnv" -}}
{{- $b := index .root.Values.backends .name -}}
- {name: HOME, value: /tmp}
- {name: XDG_CACHE_HOME, value: /tmp/.cache}
- {name: HF_HOME, value: /models}
- {name: HUGGINGFACE_HUB_CACHE, value: /models}
{{- $auth := .root.Values.modelAuth -}}
{{- with $auth.existingSecret }}
{{- /* vLLM reads VLLM_API_KEY, TEI reads API_KEY; /health and /metrics stay open for probes and Prometheus */}}
- name: {{ if eq $b.engine "tei" }}API_KEY{{ else }}VLLM_API_KEY{{ end }}
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: {{ get (dict "llm" $auth.llmKey "vision" $auth.visionKey "embeddings" $auth.teiKey) $.name }}}
{{- end }}
{{- with $b.hfTokenSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: token}
{{- end }}
{{- end -}}

{{- define "osmose.backendMounts" -}}
- {name: shm, mountPath: /dev/shm}
- {name: models, mountPath: /models}
- {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "osmose.backendVolumes" -}}
{{- $b := index .root.Values.backends .name -}}
- name: shm
  emptyDir: {medium: Memory, sizeLimit: {{ $b.shmSizeLimit }}}
- name: models
  emptyDir: {sizeLimit: {{ $b.modelCacheSizeLimit }}}
- name: tmp
  emptyDir: {sizeLimit: 2Gi}
{{- end -}}

{{/* HTTP probes on the engine's /health; the startup probe allows for the model download and load. */}}
{{- define "osmose.backendProbes" -}}
{{- $b := index .root.Values.backends .name -}}
startupProbe:
  httpGet: {path: /health, port: {{ $b.port }}}
  periodSeconds: {{ $b.startupProbe.periodSeconds }}
  failureThreshold: {{ $b.startupProbe.failureThreshold }}
readinessProbe:
  httpGet: {path: /health, port: {{ $b.port }}}
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet: {path: /health, port: {{ $b.port }}}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* Labels of a backend's pods (the PodMonitor copies osmose.io/backend onto its series). */}}
{{- define "osmose.backendPodLabels" -}}
{{ include "osmose.componentSelector" (dict "root" .root "component" (printf "backend-%s" .name)) }}
osmose.io/backend: {{ include "osmose.backendName" (dict "root" .root "backend" .name) }}
osmose.io/engine: {{ (index .root.Values.backends .name).engine }}
{{- end -}}
