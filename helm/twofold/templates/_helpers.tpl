{{/* Names, labels and the shared pieces of every service's objects. */}}

{{- define "twofold.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "twofold.fullname" -}}
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

{{- define "twofold.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The workloads: values key → component name (a Deployment each). */}}
{{- define "twofold.components" -}}
api: api
verifier: verifier
lockoutDetector: lockout-detector
sessionBroadcaster: session-broadcaster
webhookDelivery: webhook-delivery
auditSink: audit-sink
{{- end -}}

{{/* Component → the service it runs (its folder under services/): the webhook delivery role is the
session broadcaster started with TWOFOLD_SESSION_ROLES=deliver. */}}
{{- define "twofold.serviceOf" -}}
{{- ternary "session-broadcaster" . (eq . "webhook-delivery") -}}
{{- end -}}

{{/* The consumer services (Kafka consumer groups), values keys. */}}
{{- define "twofold.consumers" -}}
- verifier
- lockoutDetector
- sessionBroadcaster
- auditSink
{{- end -}}

{{- define "twofold.selectorLabels" -}}
app.kubernetes.io/name: {{ include "twofold.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "twofold.labels" -}}
helm.sh/chart: {{ include "twofold.chart" . }}
{{ include "twofold.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: twofold
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* dict "ctx" $ "component" "verifier": the full name shortened so that the whole stays a DNS label
(63 characters) with the component kept whole. */}}
{{- define "twofold.componentName" -}}
{{- printf "%s-%s" (include "twofold.fullname" .ctx | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component -}}
{{- end -}}

{{- define "twofold.componentSelectorLabels" -}}
{{ include "twofold.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "twofold.componentLabels" -}}
{{ include "twofold.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "twofold.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "twofold.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "twofold.secretName" -}}
{{- default (include "twofold.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "twofold.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* TWOFOLD_PUBLIC_URL: the value, or <scheme>://<first ingress host>, https only when the Ingress has TLS for that
host (a tls entry listing it, matching it by a *. wildcard, or listing no hosts): on plain http the api must not
set a Secure (__Host-) CSRF cookie or HSTS, or no hosted-page form could ever be submitted. */}}
{{- define "twofold.publicUrl" -}}
{{- if .Values.api.publicUrl -}}
{{- .Values.api.publicUrl -}}
{{- else if and .Values.api.ingress.enabled .Values.api.ingress.hosts -}}
{{- $host := lower (first .Values.api.ingress.hosts).host -}}
{{- $tls := false -}}
{{- range .Values.api.ingress.tls -}}
{{- if not .hosts }}{{ $tls = true }}{{ end -}}
{{- range .hosts -}}
{{- $h := lower . -}}
{{- if or (eq $h $host) (and (hasPrefix "*." $h) (regexMatch (printf "^[^.*]+%s$" (trimPrefix "*" $h | regexQuoteMeta)) $host)) }}{{ $tls = true }}{{ end -}}
{{- end -}}
{{- end -}}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host -}}
{{- end -}}
{{- end -}}

{{/* The path prefixes the Ingress routes to the api (a YAML list): api.ingress.paths, plus /v1/admin and /docs
when exposeAdmin and exposeDocs ask for them. /healthz, /readyz and /metrics are never among them. */}}
{{- define "twofold.ingressPaths" -}}
{{- $ing := .Values.api.ingress -}}
{{- $paths := $ing.paths | default list -}}
{{- if $ing.exposeAdmin }}{{ $paths = append $paths "/v1/admin" }}{{ end -}}
{{- if $ing.exposeDocs }}{{ $paths = append $paths "/docs" }}{{ end -}}
{{- toYaml ($paths | uniq) -}}
{{- end -}}

{{/* Consumer group id of a component, as the services build it. */}}
{{- define "twofold.groupId" -}}
{{- printf "%stwofold-%s" .ctx.Values.kafka.groupPrefix .component -}}
{{- end -}}

{{/* An env var read from the twofold Secret: dict "ctx" $ "name" "DATABASE_URL" "key" "databaseUrl" */}}
{{- define "twofold.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "twofold.secretName" .ctx }}
      key: {{ index .ctx.Values.secrets.keys .key }}
{{- end -}}

{{/* Where the Kafka CA bundle is mounted (kafka.ssl.caSecret's ca.crt); empty without one. */}}
{{- define "twofold.kafkaCaFile" -}}
{{- if .Values.kafka.ssl.caSecret }}/etc/twofold/kafka-ca/ca.crt{{ end -}}
{{- end -}}

{{/* The volume of the Kafka CA bundle (a list entry), or nothing. */}}
{{- define "twofold.kafkaCaVolume" -}}
{{- with .Values.kafka.ssl.caSecret -}}
- name: kafka-ca
  secret:
    secretName: {{ . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end -}}

{{/* The mount of the Kafka CA bundle (a list entry), or nothing. */}}
{{- define "twofold.kafkaCaMount" -}}
{{- if .Values.kafka.ssl.caSecret -}}
- name: kafka-ca
  mountPath: /etc/twofold/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Kafka TLS and SASL as inline env (the topics Job, which runs before the ConfigMap exists; the Deployments
read these from the ConfigMap): dict "ctx" $ "secret" <name of the Secret holding the SASL password> */}}
{{- define "twofold.kafkaSecurityEnv" -}}
{{- $k := .ctx.Values.kafka -}}
- name: KAFKA_SSL
  value: {{ $k.ssl.enabled | toString | quote }}
- name: KAFKA_SSL_CA_FILE
  value: {{ include "twofold.kafkaCaFile" .ctx | quote }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $k.sasl.username | quote }}
{{- if $k.sasl.mechanism }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .ctx.Values.secrets.keys.kafkaSaslPassword }}
{{- end }}
{{- end -}}

{{/* An integer value as an env var string (YAML numbers arrive as floats: 3600000 would print 3.6e+06). */}}
{{- define "twofold.intEnv" -}}
- name: {{ .name }}
  value: {{ .value | int64 | quote }}
{{- end -}}

{{/*
Environment of a container beyond the shared ConfigMap: exactly the variables its service's
config.ts declares (test/helm/env.test.ts holds the chart to that), secrets from the Secret.
dict "ctx" $ "component" "audit-sink" "key" "auditSink"
*/}}
{{- define "twofold.env" -}}
{{- $ := .ctx -}}
{{- $v := index $.Values .key -}}
{{- $service := include "twofold.serviceOf" .component -}}
- name: OTEL_SERVICE_NAME
  value: twofold-{{ .component }}
{{ include "twofold.secretEnv" (dict "ctx" $ "name" "DATABASE_URL" "key" "databaseUrl") }}
{{ include "twofold.secretEnv" (dict "ctx" $ "name" "REDIS_URL" "key" "redisUrl") }}
{{- /* Optional without a mechanism: an existing Secret need not hold a password nobody uses. */}}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "twofold.secretName" $ }}
      key: {{ $.Values.secrets.keys.kafkaSaslPassword }}
      {{- if not $.Values.kafka.sasl.mechanism }}
      optional: true
      {{- end }}
{{- if eq $service "api" }}
{{ include "twofold.secretEnv" (dict "ctx" $ "name" "TWOFOLD_MASTER_KEYS" "key" "masterKeys") }}
{{ include "twofold.secretEnv" (dict "ctx" $ "name" "TWOFOLD_ADMIN_KEY" "key" "adminKey") }}
- name: TWOFOLD_ACTIVE_KEY_ID
  value: {{ $.Values.config.activeKeyId | quote }}
{{ include "twofold.intEnv" (dict "name" "API_PORT" "value" $v.port) }}
- name: API_HOST
  value: {{ $v.host | quote }}
- name: TWOFOLD_PUBLIC_URL
  value: {{ include "twofold.publicUrl" $ | quote }}
{{ include "twofold.intEnv" (dict "name" "TOTP_WINDOW" "value" $v.totpWindow) }}
{{ include "twofold.intEnv" (dict "name" "RATE_LIMIT_VERIFY_PER_CHALLENGE" "value" $v.rateLimits.verifyPerChallenge) }}
{{ include "twofold.intEnv" (dict "name" "RATE_LIMIT_VERIFY_PER_APP" "value" $v.rateLimits.verifyPerApp) }}
{{ include "twofold.intEnv" (dict "name" "RATE_LIMIT_EVENTS_PER_APP" "value" $v.rateLimits.eventsPerApp) }}
{{- else }}
{{ include "twofold.intEnv" (dict "name" "METRICS_PORT" "value" $v.metricsPort) }}
- name: METRICS_HOST
  value: {{ $.Values.config.metricsHost | quote }}
{{- end }}
{{- if or (eq $service "api") (eq $service "session-broadcaster") }}
{{- /* The api checks webhook URLs against it, the broadcaster (both roles) the addresses it connects to. */}}
- name: WEBHOOK_DENIED_NETWORKS
  value: {{ join "," $.Values.config.webhookDeniedNetworks | quote }}
{{- end }}
{{- if eq $service "verifier" }}
{{ include "twofold.intEnv" (dict "name" "POLICY_MAX_STALENESS_MS" "value" $v.policyMaxStalenessMs) }}
{{- end }}
{{- if eq $service "lockout-detector" }}
- name: LOCKOUT_RULES
  value: {{ ternary ($v.rules | toJson) "" (not (empty $v.rules)) | quote }}
{{ include "twofold.intEnv" (dict "name" "LOCKOUT_PARTITIONS_CONCURRENCY" "value" $v.partitionsConcurrency) }}
{{ include "twofold.intEnv" (dict "name" "LOCKOUT_BASES_PER_SCRIPT" "value" $v.basesPerScript) }}
{{ include "twofold.intEnv" (dict "name" "LOCKOUT_LIFT_CONCURRENCY" "value" $v.liftConcurrency) }}
{{- end }}
{{- if eq $service "session-broadcaster" }}
{{- /* Both roles read the session and webhook settings; they live in one place, sessionBroadcaster. */}}
{{- $sb := $.Values.sessionBroadcaster }}
{{- $w := $sb.webhooks }}
- name: TWOFOLD_SESSION_ROLES
  value: {{ ternary "deliver" (ternary "consume" "consume,deliver" $.Values.webhookDelivery.enabled) (eq .component "webhook-delivery") | quote }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_SESSION_TTL_SECONDS" "value" $sb.sessionTtlSeconds) }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_SESSION_STREAM_MAXLEN" "value" $sb.streamMaxLen) }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_WEBHOOK_ATTEMPTS" "value" $w.attempts) }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_WEBHOOK_BACKOFF_MS" "value" $w.backoffMs) }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_WEBHOOK_TIMEOUT_MS" "value" $w.timeoutMs) }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_WEBHOOK_CONCURRENCY" "value" $w.concurrency) }}
{{ include "twofold.intEnv" (dict "name" "TWOFOLD_WEBHOOK_REFRESH_MS" "value" $w.refreshMs) }}
{{- end }}
{{- if eq $service "audit-sink" }}
{{ include "twofold.intEnv" (dict "name" "AUDIT_RETENTION_DAYS" "value" $v.retentionDays) }}
{{ include "twofold.intEnv" (dict "name" "AUDIT_PARTITIONS_AHEAD_DAYS" "value" $v.partitionsAheadDays) }}
{{ include "twofold.intEnv" (dict "name" "AUDIT_MAINTENANCE_INTERVAL_MS" "value" $v.maintenanceIntervalMs) }}
{{ include "twofold.intEnv" (dict "name" "AUDIT_CONCURRENT_PARTITIONS" "value" $v.concurrentPartitions) }}
{{- end }}
{{- with include "twofold.mergeByKey" (dict "global" $.Values.extraEnv "own" $v.extraEnv "key" "name") }}
{{ . }}
{{- end }}
{{- end -}}

{{/*
A global list followed by a service's, merged: an entry of the service replaces the global entry with the
same key (a name, a mountPath), so the two never clash in a pod. Empty string when both are empty.
dict "global" $.Values.extraVolumes "own" $v.extraVolumes "key" "name"
*/}}
{{- define "twofold.mergeByKey" -}}
{{- $ownKeys := list -}}
{{- range (.own | default list) }}{{ $ownKeys = append $ownKeys (index . $.key) }}{{ end -}}
{{- $out := list -}}
{{- range (.global | default list) }}{{ if not (has (index . $.key) $ownKeys) }}{{ $out = append $out . }}{{ end }}{{ end -}}
{{- $out = concat $out (.own | default list) -}}
{{- with $out }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* A service's own value when non-empty, else the global one: dict "ctx" $ "v" $v "field" "nodeSelector" */}}
{{- define "twofold.podField" -}}
{{- $own := index .v .field -}}
{{- if $own -}}
{{- toYaml $own -}}
{{- else -}}
{{- with index .ctx.Values .field }}{{ toYaml . }}{{ end -}}
{{- end -}}
{{- end -}}

{{/* The Deployment of a service: dict "ctx" $ "key" "verifier" */}}
{{- define "twofold.deployment" -}}
{{- $ := .ctx -}}
{{- $component := index (include "twofold.components" $ | fromYaml) .key -}}
{{- $v := index $.Values .key -}}
{{- $args := dict "ctx" $ "component" $component "key" .key -}}
{{- $port := ternary $v.port $v.metricsPort (eq $component "api") -}}
{{- $portName := ternary "http" "metrics" (eq $component "api") -}}
{{- $keda := and (hasKey $v "keda") $v.keda.enabled -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "twofold.componentName" $args }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "twofold.componentLabels" $args | nindent 4 }}
spec:
  {{- if not (or $v.autoscaling.enabled $keda) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "twofold.componentSelectorLabels" $args | nindent 6 }}
  template:
    metadata:
      annotations:
        # A changed ConfigMap or Secret rolls the pods: environment variables are read once, at start.
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
        {{- if not $.Values.secrets.existingSecret }}
        checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") $ | sha256sum }}
        {{- end }}
        {{- with (merge (dict) $v.podAnnotations $.Values.podAnnotations) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "twofold.componentLabels" $args | nindent 8 }}
        {{- with $.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "twofold.serviceAccountName" $ }}
      automountServiceAccountToken: {{ $.Values.serviceAccount.automountServiceAccountToken }}
      enableServiceLinks: false
      {{- with $.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      containers:
        - name: {{ $component }}
          image: {{ include "twofold.image" $ }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command: ["node"]
          args: ["--import", "@twofold/telemetry/register", "services/{{ include "twofold.serviceOf" $component }}/dist/main.js"]
          ports:
            - name: {{ $portName }}
              containerPort: {{ $port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "twofold.fullname" $ }}
            {{- with $.Values.extraEnvFrom }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            {{- include "twofold.env" $args | nindent 12 }}
          startupProbe:
            httpGet:
              path: /healthz
              port: {{ $portName }}
            periodSeconds: 2
            timeoutSeconds: 3
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ $portName }}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: {{ $portName }}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          {{- if and (eq $component "api") (gt (int $v.preStopSleepSeconds) 0) }}
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "{{ $v.preStopSleepSeconds }}"]
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with include "twofold.kafkaCaMount" $ }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with include "twofold.mergeByKey" (dict "global" $.Values.extraVolumeMounts "own" $v.extraVolumeMounts "key" "mountPath") }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $.Values.tmpSizeLimit }}
        {{- with include "twofold.kafkaCaVolume" $ }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with include "twofold.mergeByKey" (dict "global" $.Values.extraVolumes "own" $v.extraVolumes "key" "name") }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with (include "twofold.podField" (dict "ctx" $ "v" $v "field" "nodeSelector")) }}
      nodeSelector:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with (include "twofold.podField" (dict "ctx" $ "v" $v "field" "tolerations")) }}
      tolerations:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with (include "twofold.podField" (dict "ctx" $ "v" $v "field" "affinity")) }}
      affinity:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with (include "twofold.podField" (dict "ctx" $ "v" $v "field" "topologySpreadConstraints") | fromYamlArray) }}
      topologySpreadConstraints:
        {{- range . }}
        {{- $constraint := . }}
        {{- if not (hasKey $constraint "labelSelector") }}
        {{- $constraint = merge (dict "labelSelector" (dict "matchLabels" (include "twofold.componentSelectorLabels" $args | fromYaml))) $constraint }}
        {{- end }}
        - {{ toYaml $constraint | nindent 10 | trim }}
        {{- end }}
      {{- end }}
{{- end -}}

{{/* The HorizontalPodAutoscaler of a service (CPU, optionally memory). */}}
{{- define "twofold.hpa" -}}
{{- $ := .ctx -}}
{{- $component := index (include "twofold.components" $ | fromYaml) .key -}}
{{- $v := index $.Values .key -}}
{{- $args := dict "ctx" $ "component" $component -}}
{{- $a := $v.autoscaling -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "twofold.componentName" $args }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "twofold.componentLabels" $args | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "twofold.componentName" $args }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    {{- with $a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The KEDA ScaledObject of a consumer service: scales on its consumer group's lag. */}}
{{- define "twofold.scaledObject" -}}
{{- $ := .ctx -}}
{{- $component := index (include "twofold.components" $ | fromYaml) .key -}}
{{- $v := index $.Values .key -}}
{{- $args := dict "ctx" $ "component" $component -}}
{{- $k := $v.keda -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "twofold.componentName" $args }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "twofold.componentLabels" $args | nindent 4 }}
spec:
  scaleTargetRef:
    name: {{ include "twofold.componentName" $args }}
  minReplicaCount: {{ $k.minReplicaCount }}
  maxReplicaCount: {{ $k.maxReplicaCount }}
  pollingInterval: {{ $k.pollingInterval }}
  cooldownPeriod: {{ $k.cooldownPeriod }}
  triggers:
    # No topic: KEDA sums the lag over every topic the group reads.
    - type: kafka
      metadata:
        bootstrapServers: {{ join "," $.Values.kafka.brokers | quote }}
        consumerGroup: {{ include "twofold.groupId" $args | quote }}
        lagThreshold: {{ $k.lagThreshold | quote }}
        offsetResetPolicy: earliest
        allowIdleConsumers: "false"
      {{- with $k.triggerAuthenticationName }}
      authenticationRef:
        name: {{ . }}
      {{- end }}
{{- end -}}

{{/* The PodDisruptionBudget of a service. */}}
{{- define "twofold.pdb" -}}
{{- $ := .ctx -}}
{{- $component := index (include "twofold.components" $ | fromYaml) .key -}}
{{- $v := index $.Values .key -}}
{{- $args := dict "ctx" $ "component" $component -}}
{{- $p := $v.podDisruptionBudget -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "twofold.componentName" $args }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "twofold.componentLabels" $args | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $p.minAvailable) }}
  minAvailable: {{ $p.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $p.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "twofold.componentSelectorLabels" $args | nindent 6 }}
{{- end -}}

{{/* The Service of a consumer: its metrics port, for Prometheus. */}}
{{- define "twofold.metricsService" -}}
{{- $ := .ctx -}}
{{- $component := index (include "twofold.components" $ | fromYaml) .key -}}
{{- $v := index $.Values .key -}}
{{- $args := dict "ctx" $ "component" $component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "twofold.componentName" $args }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "twofold.componentLabels" $args | nindent 4 }}
  {{- with $v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  clusterIP: None
  ports:
    - name: metrics
      port: {{ $v.metricsPort }}
      targetPort: metrics
      protocol: TCP
  selector:
    {{- include "twofold.componentSelectorLabels" $args | nindent 4 }}
{{- end -}}

{{/* Environment of the hook Jobs, inline: they run before the ConfigMap exists. Both read these;
the migration Job adds the schema and the URLs, the topics Job the topic sizes. */}}
{{- define "twofold.hookEnv" -}}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: KAFKA_BROKERS
  value: {{ join "," .Values.kafka.brokers | quote }}
- name: KAFKA_CLIENT_ID
  value: {{ .Values.kafka.clientId | quote }}
- name: TWOFOLD_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
{{- end -}}

{{/* Pod spec pieces shared by the hook Jobs. */}}
{{- define "twofold.hookPod" -}}
automountServiceAccountToken: false
enableServiceLinks: false
restartPolicy: Never
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
  {{- with include "twofold.kafkaCaVolume" . }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Mounts of a hook Job's container: /tmp, the Kafka CA and the global extraVolumeMounts (a private CA, …). The Jobs take the
global extraEnv, extraEnvFrom and extraVolumes too; the per-service ones are for the Deployments. */}}
{{- define "twofold.hookVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with include "twofold.kafkaCaMount" . }}
{{ . }}
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
