{{/* Names, labels and small shared values of the diego-operator chart. */}}

{{- define "diego-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; components append -controller, -cell-agent, -bbs, -webhook. */}}
{{- define "diego-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "diego-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "diego-operator.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Where Leases live: leader election, cell presence, BBS domains. Every role must agree on it. */}}
{{- define "diego-operator.systemNamespace" -}}
{{- default .Release.Namespace .Values.systemNamespace }}
{{- end }}

{{/* The controller's leader Lease: src/controllers/manager.ts LEADER_LEASE_NAME, a constant of the code. */}}
{{- define "diego-operator.leaderLeaseName" -}}
diego-operator-controller
{{- end }}

{{/* Where the BBS facade keeps the DesiredLRPs and Tasks it creates for its clients. */}}
{{- define "diego-operator.bbsNamespace" -}}
{{- default .Release.Namespace .Values.bbs.namespace }}
{{- end }}

{{- define "diego-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Kubernetes recommended labels; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "diego-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "diego-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: diego-operator
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "diego-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "diego-operator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* ServiceAccount name of a component; call with (dict "ctx" $ "component" "cell-agent" "key" "cellAgent"). */}}
{{- define "diego-operator.serviceAccountName" -}}
{{- $sa := index .ctx.Values.serviceAccount .key | default dict }}
{{- if .ctx.Values.serviceAccount.create }}
{{- default (printf "%s-%s" (include "diego-operator.fullname" .ctx) .component) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{- define "diego-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "diego-operator.fullname" .) }}
{{- end }}

{{- define "diego-operator.webhookCertSecretName" -}}
{{- printf "%s-webhook-cert" (include "diego-operator.fullname" .) }}
{{- end }}

{{/*
Whether the controller serves the image credentials endpoint to the cell agents: on the webhook's TLS server, so both
must be on. Renders "true" or nothing.
*/}}
{{- define "diego-operator.imageCredentialsServed" -}}
{{- if and .Values.webhook.enabled .Values.cellAgent.enabled }}true{{ end }}
{{- end }}

{{/* The ConfigMap with the CA the cell agents verify the endpoint with (never the certificate's Secret: it has the key). */}}
{{- define "diego-operator.imageCredentialsCaConfigMap" -}}
{{- if .Values.imageCredentials.caConfigMap }}
{{- .Values.imageCredentials.caConfigMap }}
{{- else if .Values.webhook.certManager.enabled }}
{{- fail "imageCredentials.caConfigMap is required with webhook.certManager.enabled: a ConfigMap holding the CA (key imageCredentials.caKey) that signs the webhook certificate, e.g. from trust-manager; the cell agents fetch image credentials from the controller over that TLS and must not mount the certificate's Secret" }}
{{- else }}
{{- printf "%s-webhook-ca" (include "diego-operator.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The webhook's serving certificate when cert-manager is not used, as YAML {ca, crt, key} (base64). Reuses the one in
the Secret of a previous release; otherwise generates a CA and a certificate for the webhook Service. Generated
once per render (cached in .Values) so the Secret, the caBundle and the pods' checksum agree.
*/}}
{{- define "diego-operator.webhookCert" -}}
{{- if not (hasKey .Values "__webhookCert") }}
{{- $svc := include "diego-operator.webhookServiceName" . }}
{{- $ns := .Release.Namespace }}
{{- $cert := dict }}
{{- $secret := lookup "v1" "Secret" $ns (include "diego-operator.webhookCertSecretName" .) }}
{{- $data := dig "data" dict ($secret | default dict) }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") }}
{{- $_ := set $cert "ca" (index $data "ca.crt") }}
{{- $_ := set $cert "crt" (index $data "tls.crt") }}
{{- $_ := set $cert "key" (index $data "tls.key") }}
{{- else }}
{{- $days := int .Values.webhook.certValidityDays }}
{{- $ca := genCA (printf "%s-webhook-ca" (include "diego-operator.fullname" .)) $days }}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) }}
{{- $signed := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $names $days $ca }}
{{- $_ := set $cert "ca" ($ca.Cert | b64enc) }}
{{- $_ := set $cert "crt" ($signed.Cert | b64enc) }}
{{- $_ := set $cert "key" ($signed.Key | b64enc) }}
{{- end }}
{{- $_ := set .Values "__webhookCert" $cert }}
{{- end }}
{{- toYaml (index .Values "__webhookCert") }}
{{- end }}
