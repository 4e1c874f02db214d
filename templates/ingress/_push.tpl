{{- /* Local mode's push endpoint (SPEC 5.8): rendered only when the orchestrator enabled it, a public domain */ -}}
{{- /* template is set, ingress-nginx is enabled and the chosen https mode has its certificate source: */ -}}
{{- /* cert-manager for CertManager, the copied Secret (hook copy_custom_certificate) for CustomCertificate. */ -}}
{{- /* Anything missing renders nothing at all, never an Ingress without its certificate. */ -}}
{{- define "registry_push_enabled" -}}
  {{- $state := (.Values.registry.internal.orchestrator | default dict).state | default dict -}}
  {{- $modules := .Values.global.enabledModules | default list -}}
  {{- $template := dig "modules" "publicDomainTemplate" "" .Values.global | toString -}}
  {{- if and $state.ingress_enabled $template (has "ingress-nginx" $modules) -}}
    {{- $mode := include "registry_https_mode_unchecked" . -}}
    {{- if eq $mode "CertManager" -}}
      {{- if has "cert-manager" $modules -}}enabled{{- end -}}
    {{- else if eq $mode "CustomCertificate" -}}
      {{- if dig "internal" "customCertificateData" "tls.crt" "" .Values.registry -}}enabled{{- end -}}
    {{- else -}}
      enabled
    {{- end -}}
  {{- end -}}
{{- end -}}

{{- /* Usage: {{ include "registry_push_host" . }} — registry.<public domain> */ -}}
{{- define "registry_push_host" -}}
  {{- include "helm_lib_module_public_domain" (list . "registry") -}}
{{- end -}}
