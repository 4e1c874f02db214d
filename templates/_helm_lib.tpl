{{- /*
  Local subset of the Deckhouse lib-helm helpers (charts/helm_lib of github.com/deckhouse/lib-helm).

  lib-helm is not vendored into this module. Every public helper here keeps the lib-helm name, argument
  shape and output shape: fragments are YAML that starts at column 0 with its own key (`labels:`,
  `securityContext:`, `tolerations:`, ...) or a bare list, meant to be placed with `nindent`; scalar
  helpers return a bare string. Switching to the vendored chart later means deleting this file.
  Helpers named `registry_*` are private to this module and have no lib-helm counterpart.

  Module values are read from `.Values.<lowerCamelCase of .Chart.Name>` (`.Values.registry`), globals from
  `.Values.global`.
*/ -}}


{{- /* ================================================================ module name and values */ -}}

{{- /* Usage: {{ include "helm_lib_module_camelcase_name" . }} or {{ include "helm_lib_module_camelcase_name" "cert-manager" }} */ -}}
{{- /* Returns the module name in lowerCamelCase: "registry" -> "registry", "cert-manager" -> "certManager". */ -}}
{{- define "helm_lib_module_camelcase_name" -}}
  {{- $raw := "" -}}
  {{- if kindIs "string" . -}}
    {{- $raw = trimAll "\"" . -}}
  {{- else -}}
    {{- $raw = .Chart.Name -}}
  {{- end -}}
  {{- $raw | replace "-" "_" | camelcase | untitle -}}
{{- end -}}


{{- /* ================================================================ labels */ -}}

{{- /* Usage: {{- include "helm_lib_module_labels" (list . (dict "app" "registry" "component" "x")) | nindent 2 }} */ -}}
{{- /* Returns a `labels:` block: heritage and module first, then the extra labels sorted by key, values quoted. */ -}}
{{- define "helm_lib_module_labels" -}}
  {{- $ctx := index . 0 -}}
labels:
  heritage: deckhouse
  module: {{ $ctx.Chart.Name }}
  {{- if ge (len .) 2 }}
    {{- range $name, $value := index . 1 }}
  {{ $name }}: {{ $value | quote }}
    {{- end }}
  {{- end }}
{{- end -}}


{{- /* ================================================================ images */ -}}

{{- /* Internal. Usage: {{ include "registry_image_digest_or_empty" (list . "<moduleCamel>" "<imageName>") }} */ -}}
{{- /* global.modulesImages.digests.<moduleCamel>.<imageName>, or an empty string. */ -}}
{{- define "registry_image_digest_or_empty" -}}
  {{- $ctx := index . 0 -}}
  {{- $perModule := dig "modulesImages" "digests" (index . 1) dict ($ctx.Values.global | default dict) -}}
  {{- if kindIs "map" $perModule -}}
    {{- index $perModule (index . 2) | default "" -}}
  {{- end -}}
{{- end -}}

{{- /* Internal. Usage: {{ include "registry_image_module" (list . ...) }} — the camelCase module an image belongs to: */ -}}
{{- /* the optional third argument of the image helpers, else the chart. */ -}}
{{- define "registry_image_module" -}}
  {{- if ge (len .) 3 -}}
    {{- include "helm_lib_module_camelcase_name" (index . 2 | toString) -}}
  {{- else -}}
    {{- include "helm_lib_module_camelcase_name" (index . 0) -}}
  {{- end -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_image" (list . "<imageName>") }} or (list . "<imageName>" "<module-name>") */ -}}
{{- /* Returns "<global.modulesImages.registry.base>@<digest>" with the digest from */ -}}
{{- /* global.modulesImages.digests.<moduleCamelName>.<imageName>; fails when the digest or the base is missing. */ -}}
{{- define "helm_lib_module_image" -}}
  {{- $ctx := index . 0 -}}
  {{- $image := index . 1 | trimAll "\"" -}}
  {{- $module := include "registry_image_module" . -}}
  {{- $digest := include "registry_image_digest_or_empty" (list $ctx $module $image) -}}
  {{- if not $digest -}}
    {{- fail (printf "Image %s.%s has no digest: global.modulesImages.digests.%s.%s is not set" $module $image $module $image) -}}
  {{- end -}}
  {{- $base := dig "modulesImages" "registry" "base" "" $ctx.Values.global | toString -}}
  {{- if not $base -}}
    {{- fail (printf "Image %s.%s: global.modulesImages.registry.base is not set" $module $image) -}}
  {{- end -}}
  {{- printf "%s@%s" $base $digest -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_image_no_fail" (list . "<imageName>") }} — as above, empty instead of failing. */ -}}
{{- define "helm_lib_module_image_no_fail" -}}
  {{- $ctx := index . 0 -}}
  {{- $image := index . 1 | trimAll "\"" -}}
  {{- $digest := include "registry_image_digest_or_empty" (list $ctx (include "registry_image_module" .) $image) -}}
  {{- $base := dig "modulesImages" "registry" "base" "" ($ctx.Values.global | default dict) | toString -}}
  {{- if and $digest $base -}}
    {{- printf "%s@%s" $base $digest -}}
  {{- end -}}
{{- end -}}


{{- /* ================================================================ scheduling */ -}}

{{- /* Usage: {{- include "helm_lib_priority_class" (tuple . "system-cluster-critical") | nindent 6 }} */ -}}
{{- /* Returns `priorityClassName: <name>`. */ -}}
{{- define "helm_lib_priority_class" -}}
priorityClassName: {{ index . 1 }}
{{- end -}}

{{- /* Internal: fails on an unknown node selector strategy, otherwise returns it. */ -}}
{{- define "helm_lib_internal_check_node_selector_strategy" -}}
  {{- if not (has . (list "frontend" "monitoring" "system" "master")) -}}
    {{- fail (printf "unknown strategy \"%v\"" .) -}}
  {{- end -}}
  {{- . -}}
{{- end -}}

{{- /* Internal. Usage: {{ include "registry_role_count" (list . "<role>") }} — discovery.d8SpecificNodeCountByRole.<role>, 0 when absent. */ -}}
{{- define "registry_role_count" -}}
  {{- $ctx := index . 0 -}}
  {{- dig "discovery" "d8SpecificNodeCountByRole" (index . 1) 0 $ctx.Values.global | int -}}
{{- end -}}

{{- /* Usage: {{- include "helm_lib_node_selector" (tuple . "master") | nindent 6 }} */ -}}
{{- /* Strategies "master", "system", "frontend", "monitoring"; an optional third argument replaces the module values. */ -}}
{{- /* master: control-plane nodes (discovery.clusterMasterCount > 0), else nodes labelled for the control-plane or */ -}}
{{- /* system role. Others: <module>.nodeSelector, else nodes dedicated to the module, to the role, (monitoring) to */ -}}
{{- /* system. Returns a `nodeSelector:` block, or nothing when no such nodes are known. */ -}}
{{- define "helm_lib_node_selector" -}}
  {{- $ctx := index . 0 -}}
  {{- $strategy := include "helm_lib_internal_check_node_selector_strategy" (index . 1) -}}
  {{- $camel := include "helm_lib_module_camelcase_name" $ctx -}}
  {{- $mv := index $ctx.Values $camel | default dict -}}
  {{- if ge (len .) 3 -}}
    {{- $mv = index . 2 | default dict -}}
  {{- end -}}
  {{- if eq $strategy "master" -}}
    {{- if gt (dig "discovery" "clusterMasterCount" 0 $ctx.Values.global | int) 0 -}}
nodeSelector:
  node-role.kubernetes.io/control-plane: ""
    {{- else if gt (include "registry_role_count" (list $ctx "master") | int) 0 -}}
nodeSelector:
  node-role.deckhouse.io/control-plane: ""
    {{- else if gt (include "registry_role_count" (list $ctx "system") | int) 0 -}}
nodeSelector:
  node-role.deckhouse.io/system: ""
    {{- end -}}
  {{- else -}}
    {{- if $mv.nodeSelector -}}
nodeSelector: {{ $mv.nodeSelector | toJson }}
    {{- else if gt (include "registry_role_count" (list $ctx $camel) | int) 0 -}}
nodeSelector:
  node-role.deckhouse.io/{{ $ctx.Chart.Name }}: ""
    {{- else if gt (include "registry_role_count" (list $ctx $strategy) | int) 0 -}}
nodeSelector:
  node-role.deckhouse.io/{{ $strategy }}: ""
    {{- else if and (eq $strategy "monitoring") (gt (include "registry_role_count" (list $ctx "system") | int) 0) -}}
nodeSelector:
  node-role.deckhouse.io/system: ""
    {{- end -}}
  {{- end -}}
{{- end -}}

{{- /* Internal: fails on an unknown base toleration strategy, otherwise returns it. */ -}}
{{- define "helm_lib_internal_check_tolerations_strategy" -}}
  {{- if not (has . (list "custom" "frontend" "monitoring" "system" "any-node" "wildcard")) -}}
    {{- fail (printf "unknown strategy \"%v\"" .) -}}
  {{- end -}}
  {{- . -}}
{{- end -}}

{{- /* Usage: {{- include "helm_lib_tolerations" (tuple . "any-node" "with-uninitialized" "without-storage-problems") | nindent 6 }} */ -}}
{{- /* Base strategy: "any-node", "wildcard", "system", "frontend", "monitoring", or "custom" (which needs at least one */ -}}
{{- /* additional strategy). Additional strategies: "with-<name>" adds, "without-<name>" removes; names: uninitialized */ -}}
{{- /* (implies node-problems, and no-csi in cloud/hybrid clusters), node-problems, storage-problems (on by default */ -}}
{{- /* except for custom and wildcard), no-csi, cloud-provider-uninitialized. any-node also tolerates every key of */ -}}
{{- /* global.modules.placement.customTolerationKeys; for every other base strategy a non-empty */ -}}
{{- /* .Values.<module>.tolerations replaces the base set. Returns a `tolerations:` block. */ -}}
{{- define "helm_lib_tolerations" -}}
  {{- $ctx := index . 0 -}}
  {{- $strategy := include "helm_lib_internal_check_tolerations_strategy" (index . 1) -}}
  {{- $extra := list -}}
  {{- if eq $strategy "custom" -}}
    {{- if lt (len .) 3 -}}
      {{- fail "additional strategies is required" -}}
    {{- end -}}
  {{- else -}}
    {{- $extra = list "storage-problems" -}}
  {{- end -}}
  {{- range $arg := slice . 2 -}}
    {{- if hasPrefix "with-" $arg -}}
      {{- $extra = append $extra (trimPrefix "with-" $arg) -}}
    {{- else if hasPrefix "without-" $arg -}}
      {{- $extra = without $extra (trimPrefix "without-" $arg) -}}
    {{- else -}}
      {{- fail (printf "unknown additional strategy \"%v\": use with-<name> or without-<name>" $arg) -}}
    {{- end -}}
  {{- end -}}
  {{- $known := list "uninitialized" "node-problems" "storage-problems" "no-csi" "cloud-provider-uninitialized" -}}
  {{- $mv := index $ctx.Values (include "helm_lib_module_camelcase_name" $ctx) | default dict -}}
tolerations:
  {{- if eq $strategy "wildcard" }}
- operator: "Exists"
  {{- else -}}
    {{- if eq $strategy "any-node" -}}
      {{- include "registry_tolerations_any_node" $ctx -}}
    {{- else if $mv.tolerations -}}
      {{- $mv.tolerations | toYaml | nindent 0 -}}
    {{- else if ne $strategy "custom" -}}
      {{- include "registry_tolerations_dedicated" (list $ctx $strategy) -}}
    {{- end -}}
    {{- range $name := $extra -}}
      {{- if not (has $name $known) -}}
        {{- fail (printf "unknown additional strategy \"with-%v\"" $name) -}}
      {{- end -}}
      {{- include (printf "registry_tolerations_extra_%s" ($name | replace "-" "_")) $ctx -}}
    {{- end -}}
  {{- end -}}
{{- end -}}

{{- /* Internal: any node with a taint Deckhouse knows of, plus the cluster's custom toleration keys. */ -}}
{{- define "registry_tolerations_any_node" }}
- key: node-role.kubernetes.io/master
- key: node-role.kubernetes.io/control-plane
- key: node.deckhouse.io/etcd-arbiter
- key: dedicated.deckhouse.io
  operator: "Exists"
- key: dedicated
  operator: "Exists"
- key: DeletionCandidateOfClusterAutoscaler
- key: ToBeDeletedByClusterAutoscaler
  {{- range $key := dig "modules" "placement" "customTolerationKeys" list .Values.global }}
- key: {{ $key | quote }}
  operator: "Exists"
  {{- end -}}
{{- end -}}

{{- /* Internal. Usage: (list . "system"|"frontend"|"monitoring") — nodes dedicated to this module or to the role */ -}}
{{- /* (monitoring also accepts system nodes). */ -}}
{{- define "registry_tolerations_dedicated" -}}
  {{- $ctx := index . 0 -}}
  {{- $role := index . 1 -}}
  {{- $values := list $ctx.Chart.Name $role -}}
  {{- if eq $role "monitoring" -}}
    {{- $values = append $values "system" -}}
  {{- end -}}
  {{- range $v := $values }}
- key: dedicated.deckhouse.io
  operator: Equal
  value: {{ $v | quote }}
  {{- end -}}
{{- end -}}

{{- /* Internal: "uninitialized" — nodes Deckhouse has not finished bootstrapping. */ -}}
{{- define "registry_tolerations_extra_uninitialized" }}
- key: node.deckhouse.io/bashible-uninitialized
  operator: "Exists"
  effect: "NoSchedule"
- key: node.deckhouse.io/uninitialized
  operator: "Exists"
  effect: "NoSchedule"
  {{- if include "registry_cloud_or_hybrid_cluster" . -}}
    {{- include "registry_tolerations_extra_no_csi" . -}}
  {{- end -}}
  {{- include "registry_tolerations_extra_node_problems" . -}}
{{- end -}}

{{- /* Internal: "node-problems" — not-ready or unreachable nodes and nodes under pressure. */ -}}
{{- define "registry_tolerations_extra_node_problems" }}
- key: node.kubernetes.io/not-ready
- key: node.kubernetes.io/out-of-disk
- key: node.kubernetes.io/memory-pressure
- key: node.kubernetes.io/disk-pressure
- key: node.kubernetes.io/pid-pressure
- key: node.kubernetes.io/unreachable
- key: node.kubernetes.io/network-unavailable
{{- end -}}

{{- /* Internal: "storage-problems" — nodes with DRBD trouble. */ -}}
{{- define "registry_tolerations_extra_storage_problems" }}
- key: drbd.linbit.com/lost-quorum
- key: drbd.linbit.com/force-io-error
- key: drbd.linbit.com/ignore-fail-over
{{- end -}}

{{- /* Internal: "no-csi" — nodes whose CSI node driver is not registered yet. */ -}}
{{- define "registry_tolerations_extra_no_csi" }}
- key: ToBeDeletedTaint
  operator: "Exists"
- key: node.deckhouse.io/csi-not-bootstrapped
  operator: "Exists"
  effect: "NoSchedule"
{{- end -}}

{{- /* Internal: "cloud-provider-uninitialized" — nodes the cloud controller has not initialised (before bootstrap only). */ -}}
{{- define "registry_tolerations_extra_cloud_provider_uninitialized" -}}
  {{- if not .Values.global.clusterIsBootstrapped }}
- key: node.cloudprovider.kubernetes.io/uninitialized
  operator: Exists
  {{- end -}}
{{- end -}}

{{- /* Internal: non-empty for a Cloud cluster, or a non-cloud one with a cloud-provider-* module enabled (hybrid). */ -}}
{{- define "registry_cloud_or_hybrid_cluster" -}}
  {{- $cc := .Values.global.clusterConfiguration | default dict -}}
  {{- if eq ($cc.clusterType | default "") "Cloud" -}}
    cloud
  {{- else if $cc -}}
    {{- range $m := .Values.global.enabledModules | default list -}}
      {{- if hasPrefix "cloud-provider-" $m -}}hybrid{{- end -}}
    {{- end -}}
  {{- end -}}
{{- end -}}


{{- /* ================================================================ security context */ -}}

{{- /* Usage: {{- include "helm_lib_module_pod_security_context_run_as_user_deckhouse" . | nindent 6 }} */ -}}
{{- /* Pod securityContext for the "deckhouse" user and group (64535). */ -}}
{{- define "helm_lib_module_pod_security_context_run_as_user_deckhouse" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 64535
  runAsGroup: 64535
{{- end -}}

{{- /* Usage: {{- include "helm_lib_module_container_security_context_read_only_root_filesystem_capabilities_drop_all" . | nindent 8 }} */ -}}
{{- /* Container securityContext: read-only root filesystem, no privilege escalation, every capability dropped. */ -}}
{{- define "helm_lib_module_container_security_context_read_only_root_filesystem_capabilities_drop_all" -}}
securityContext:
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop:
    - ALL
{{- end -}}


{{- /* ================================================================ ephemeral storage */ -}}

{{- /* Usage: {{- include "helm_lib_module_ephemeral_storage_logs_with_extra" 10 | nindent 12 }} */ -}}
{{- /* Returns `ephemeral-storage: <50 + extra>Mi`: 50Mi for the container logs plus the argument in MiB. */ -}}
{{- define "helm_lib_module_ephemeral_storage_logs_with_extra" -}}
ephemeral-storage: {{ add . 50 }}Mi
{{- end -}}

{{- /* Usage: {{- include "helm_lib_module_ephemeral_storage_only_logs" . | nindent 12 }} */ -}}
{{- define "helm_lib_module_ephemeral_storage_only_logs" -}}
ephemeral-storage: 50Mi
{{- end -}}


{{- /* ================================================================ high availability */ -}}

{{- /* Usage: {{- if (include "helm_lib_ha_enabled" .) }} */ -}}
{{- /* Non-empty when HA is on, empty otherwise. The first of these that is present decides: */ -}}
{{- /* .Values.<module>.highAvailability, global.highAvailability, global.discovery.clusterControlPlaneIsHighlyAvailable. */ -}}
{{- define "helm_lib_ha_enabled" -}}
  {{- $mv := index .Values (include "helm_lib_module_camelcase_name" .) | default dict -}}
  {{- $on := false -}}
  {{- if hasKey $mv "highAvailability" -}}
    {{- $on = $mv.highAvailability -}}
  {{- else if hasKey .Values.global "highAvailability" -}}
    {{- $on = .Values.global.highAvailability -}}
  {{- else -}}
    {{- $on = dig "discovery" "clusterControlPlaneIsHighlyAvailable" false .Values.global -}}
  {{- end -}}
  {{- if $on -}}
    "not empty string"
  {{- end -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_is_ha_to_value" (list . <yes> <no>) }} — <yes> when HA is on, else <no>. */ -}}
{{- define "helm_lib_is_ha_to_value" -}}
  {{- if include "helm_lib_ha_enabled" (index . 0) -}}
    {{- index . 1 -}}
  {{- else -}}
    {{- index . 2 -}}
  {{- end -}}
{{- end -}}

{{- /* Usage: {{- include "helm_lib_pod_anti_affinity_for_ha" (list . (dict "app" "x")) | nindent 6 }} */ -}}
{{- /* or (list . (dict "app" "x") (dict "revisionScoped" true)). Under HA returns an `affinity:` block that keeps */ -}}
{{- /* pods matching the labels on different hosts (optionally only within one ReplicaSet); nothing otherwise. */ -}}
{{- define "helm_lib_pod_anti_affinity_for_ha" -}}
  {{- $ctx := index . 0 -}}
  {{- $match := index . 1 -}}
  {{- $perRevision := false -}}
  {{- if ge (len .) 3 -}}
    {{- $perRevision = dig "revisionScoped" false (index . 2) -}}
  {{- end -}}
  {{- if include "helm_lib_ha_enabled" $ctx -}}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
    - labelSelector:
        matchLabels:
    {{- range $k, $v := $match }}
          {{ $k }}: {{ $v | quote }}
    {{- end }}
    {{- if $perRevision }}
      matchLabelKeys:
      - pod-template-hash
    {{- end }}
      topologyKey: kubernetes.io/hostname
  {{- end -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_master_replicas_count" . }} */ -}}
{{- /* discovery.clusterMasterCount, lowered to discovery.clusterSchedulableMasterCount when that key exists, at least 1. */ -}}
{{- define "helm_lib_master_replicas_count" -}}
  {{- $discovery := .Values.global.discovery | default dict -}}
  {{- $n := dig "clusterMasterCount" 0 $discovery | int -}}
  {{- if hasKey $discovery "clusterSchedulableMasterCount" -}}
    {{- $n = min $n (index $discovery "clusterSchedulableMasterCount" | int) -}}
  {{- end -}}
  {{- max $n 1 -}}
{{- end -}}

{{- /* Usage: {{- include "helm_lib_deployment_on_master_strategy_and_replicas_for_ha" . | nindent 2 }} */ -}}
{{- /* `replicas:` and `strategy:` for a Deployment pinned to masters. HA: one replica per master */ -}}
{{- /* (helm_lib_master_replicas_count), else per d8SpecificNodeCountByRole.master, else 2; no HA: 1. */ -}}
{{- /* RollingUpdate with maxSurge 0 (masters have no spare room), maxUnavailable 2 above two replicas, else 1. */ -}}
{{- define "helm_lib_deployment_on_master_strategy_and_replicas_for_ha" -}}
  {{- $replicas := 1 -}}
  {{- if include "helm_lib_ha_enabled" . -}}
    {{- $byRole := include "registry_role_count" (list . "master") | int -}}
    {{- if gt (dig "discovery" "clusterMasterCount" 0 .Values.global | int) 0 -}}
      {{- $replicas = include "helm_lib_master_replicas_count" . | int -}}
    {{- else if gt $byRole 0 -}}
      {{- $replicas = $byRole -}}
    {{- else -}}
      {{- $replicas = 2 -}}
    {{- end -}}
  {{- end -}}
replicas: {{ $replicas }}
strategy:
  type: RollingUpdate
  rollingUpdate:
    maxSurge: 0
    maxUnavailable: {{ if gt $replicas 2 }}2{{ else }}1{{ end }}
{{- end -}}


{{- /* ================================================================ proxy */ -}}

{{- /* Usage: {{- include "helm_lib_envs_for_proxy" . | nindent 10 }} or (list . (list "extra.host" ...)) */ -}}
{{- /* When global.clusterConfiguration.proxy is set: HTTP_PROXY/http_proxy and HTTPS_PROXY/https_proxy for each */ -}}
{{- /* configured proxy, and NO_PROXY/no_proxy = the cluster's own addresses (loopback, cloud metadata, the */ -}}
{{- /* registry Service, cluster domain, pod and service subnets) + proxy.noProxy + the extra entries. A list of */ -}}
{{- /* env entries (no key), or nothing without a proxy. */ -}}
{{- define "helm_lib_envs_for_proxy" -}}
  {{- include "registry_envs_for_proxy_items" . | trim -}}
{{- end -}}

{{- define "registry_envs_for_proxy_items" -}}
  {{- $ctx := . -}}
  {{- $extraNoProxy := list -}}
  {{- if kindIs "slice" . -}}
    {{- $ctx = index . 0 -}}
    {{- if ge (len .) 2 -}}
      {{- $extraNoProxy = index . 1 | default list -}}
    {{- end -}}
  {{- end -}}
  {{- $cc := $ctx.Values.global.clusterConfiguration | default dict -}}
  {{- $proxy := $cc.proxy | default dict -}}
  {{- if $proxy -}}
    {{- range $env := list (list "HTTP_PROXY" "http_proxy" $proxy.httpProxy) (list "HTTPS_PROXY" "https_proxy" $proxy.httpsProxy) -}}
      {{- if index $env 2 }}
- name: {{ index $env 0 }}
  value: {{ index $env 2 | quote }}
- name: {{ index $env 1 }}
  value: {{ index $env 2 | quote }}
      {{- end -}}
    {{- end -}}
    {{- $noProxy := list "127.0.0.1" "169.254.169.254" "registry.d8-system.svc" -}}
    {{- range $own := list $cc.clusterDomain $cc.podSubnetCIDR $cc.serviceSubnetCIDR -}}
      {{- if $own -}}
        {{- $noProxy = append $noProxy $own -}}
      {{- end -}}
    {{- end -}}
    {{- $noProxy = concat $noProxy ($proxy.noProxy | default list) $extraNoProxy | uniq -}}
    {{- $joined := $noProxy | join "," }}
- name: NO_PROXY
  value: {{ $joined | quote }}
- name: no_proxy
  value: {{ $joined | quote }}
  {{- end -}}
{{- end -}}


{{- /* ================================================================ public domain and ingress */ -}}

{{- /* Usage: {{ include "helm_lib_module_public_domain" (list . "registry") }} */ -}}
{{- /* global.modules.publicDomainTemplate with "%s" replaced by the name portion; fails when the template has no */ -}}
{{- /* "%s" or the result is over 64 characters. */ -}}
{{- define "helm_lib_module_public_domain" -}}
  {{- $ctx := index . 0 -}}
  {{- $template := dig "modules" "publicDomainTemplate" "" $ctx.Values.global | toString -}}
  {{- if not (contains "%s" $template) -}}
    {{- fail "Error!!! global.modules.publicDomainTemplate must contain \"%s\" pattern to render service fqdn!" -}}
  {{- end -}}
  {{- $domain := printf $template (index . 1) -}}
  {{- if gt (len $domain) 64 -}}
    {{- fail "domain name must be not longer than 64 characters" -}}
  {{- end -}}
  {{- $domain -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_ingress_class" . }} */ -}}
{{- /* The first present of: .Values.<module>.ingress.ingressClass, .Values.<module>.ingressClass, */ -}}
{{- /* global.modules.ingress.ingressClass, global.modules.ingressClass. */ -}}
{{- define "helm_lib_module_ingress_class" -}}
  {{- $mv := index .Values (include "helm_lib_module_camelcase_name" .) | default dict -}}
  {{- $gm := .Values.global.modules | default dict -}}
  {{- if hasKey ($mv.ingress | default dict) "ingressClass" -}}
    {{- $mv.ingress.ingressClass -}}
  {{- else if hasKey $mv "ingressClass" -}}
    {{- $mv.ingressClass -}}
  {{- else if hasKey ($gm.ingress | default dict) "ingressClass" -}}
    {{- $gm.ingress.ingressClass -}}
  {{- else if hasKey $gm "ingressClass" -}}
    {{- $gm.ingressClass -}}
  {{- end -}}
{{- end -}}


{{- /* ================================================================ https */ -}}

{{- /* Internal. Usage: {{ $h := include "registry_https_resolve" . | fromYaml }} */ -}}
{{- /* {mode, certManager.clusterIssuerName}: .Values.<module>.https.mode when set, else global.modules.https.mode; */ -}}
{{- /* the issuer from the module when its mode is used and it names one, else global, else "letsencrypt" (the */ -}}
{{- /* documented default). Fails on an unknown mode. Does not look at which modules are enabled. */ -}}
{{- define "registry_https_resolve" -}}
  {{- $camel := include "helm_lib_module_camelcase_name" . -}}
  {{- $mv := index .Values $camel | default dict -}}
  {{- $own := $mv.https | default dict -}}
  {{- $global := dig "modules" "https" dict .Values.global -}}
  {{- $mode := $global.mode | default "" -}}
  {{- $issuer := "" -}}
  {{- if $own.mode -}}
    {{- $mode = $own.mode -}}
    {{- $issuer = dig "certManager" "clusterIssuerName" "" $own -}}
  {{- end -}}
  {{- if not $issuer -}}
    {{- $issuer = dig "certManager" "clusterIssuerName" "" $global -}}
  {{- end -}}
  {{- if not (has $mode (list "Disabled" "CertManager" "CustomCertificate" "OnlyInURI")) -}}
    {{- fail (printf "Unknown https.mode: %q (from %s.https.mode or global.modules.https.mode)" $mode $camel) -}}
  {{- end -}}
  {{- if not $issuer -}}
    {{- $issuer = "letsencrypt" -}}
  {{- end -}}
mode: {{ $mode | quote }}
certManager:
  clusterIssuerName: {{ $issuer | quote }}
{{- end -}}

{{- /* Usage: {{ if eq (include "registry_https_mode_unchecked" .) "CertManager" }} */ -}}
{{- /* The resolved https mode without the "cert-manager must be enabled" check, so a template can choose not to */ -}}
{{- /* render an Ingress instead of failing the whole release. */ -}}
{{- define "registry_https_mode_unchecked" -}}
  {{- (include "registry_https_resolve" . | fromYaml).mode -}}
{{- end -}}

{{- /* Usage: {{ $https := include "helm_lib_https_values" . | fromYaml }} */ -}}
{{- /* `mode:` plus, for CertManager, `certManager.clusterIssuerName`. Fails on an unknown mode, and on CertManager */ -}}
{{- /* while the cert-manager module is not enabled. */ -}}
{{- define "helm_lib_https_values" -}}
  {{- $h := include "registry_https_resolve" . | fromYaml -}}
  {{- if and (eq $h.mode "CertManager") (not (has "cert-manager" (.Values.global.enabledModules | default list))) -}}
    {{- fail "https.mode has value CertManager but cert-manager module not enabled" -}}
  {{- end -}}
mode: {{ $h.mode }}
  {{- if eq $h.mode "CertManager" }}
certManager:
  clusterIssuerName: {{ $h.certManager.clusterIssuerName }}
  {{- end -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_https_mode" . }} — the module's https mode (see helm_lib_https_values). */ -}}
{{- define "helm_lib_module_https_mode" -}}
  {{- (include "helm_lib_https_values" . | fromYaml).mode -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_uri_scheme" . }} — "http" for mode Disabled, "https" otherwise. */ -}}
{{- define "helm_lib_module_uri_scheme" -}}
  {{- if eq (include "registry_https_mode_unchecked" .) "Disabled" -}}http{{- else -}}https{{- end -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_https_cert_manager_cluster_issuer_name" . }} */ -}}
{{- define "helm_lib_module_https_cert_manager_cluster_issuer_name" -}}
  {{- (include "helm_lib_https_values" . | fromYaml).certManager.clusterIssuerName -}}
{{- end -}}

{{- /* Usage: {{ if (include "helm_lib_module_https_ingress_tls_enabled" .) }} — non-empty for CertManager and CustomCertificate. */ -}}
{{- define "helm_lib_module_https_ingress_tls_enabled" -}}
  {{- if has (include "helm_lib_module_https_mode" .) (list "CertManager" "CustomCertificate") -}}
    not empty string
  {{- end -}}
{{- end -}}

{{- /* Usage: {{ include "helm_lib_module_https_secret_name" (list . "registry-ingress-tls") }} */ -}}
{{- /* CertManager: the prefix; CustomCertificate: "<prefix>-customcertificate"; any other mode fails. */ -}}
{{- define "helm_lib_module_https_secret_name" -}}
  {{- $mode := include "helm_lib_module_https_mode" (index . 0) -}}
  {{- if eq $mode "CertManager" -}}
    {{- index . 1 -}}
  {{- else if eq $mode "CustomCertificate" -}}
    {{- printf "%s-customcertificate" (index . 1) -}}
  {{- else -}}
    {{- fail "https.mode must be CustomCertificate or CertManager" -}}
  {{- end -}}
{{- end -}}

{{- /* Usage: {{- include "helm_lib_module_https_copy_custom_certificate" (list . "d8-system" "registry-ingress-tls") }} */ -}}
{{- /* In CustomCertificate mode renders the kubernetes.io/tls Secret "<prefix>-customcertificate" from */ -}}
{{- /* .Values.<module>.internal.customCertificateData. This module keeps decoded PEM text there (spec 8.4), so */ -}}
{{- /* the values are base64-encoded here; lib-helm's copy expects them already encoded. */ -}}
{{- define "helm_lib_module_https_copy_custom_certificate" -}}
  {{- $ctx := index . 0 -}}
  {{- $namespace := index . 1 -}}
  {{- $prefix := index . 2 -}}
  {{- if eq (include "helm_lib_module_https_mode" $ctx) "CustomCertificate" -}}
    {{- $mv := index $ctx.Values (include "helm_lib_module_camelcase_name" $ctx) | default dict -}}
    {{- $data := dig "internal" "customCertificateData" dict $mv -}}
    {{- if $data }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "helm_lib_module_https_secret_name" (list $ctx $prefix) }}
  namespace: {{ $namespace }}
  {{- include "helm_lib_module_labels" (list $ctx (dict "app" $ctx.Chart.Name)) | nindent 2 }}
type: kubernetes.io/tls
data:
      {{- if index $data "ca.crt" }}
  ca.crt: {{ index $data "ca.crt" | b64enc }}
      {{- end }}
  tls.crt: {{ index $data "tls.crt" | required "customCertificateData has no tls.crt" | b64enc }}
  tls.key: {{ index $data "tls.key" | required "customCertificateData has no tls.key" | b64enc }}
    {{- end -}}
  {{- end -}}
{{- end -}}


{{- /* ================================================================ prometheus rules */ -}}

{{- /* Usage: {{- include "helm_lib_prometheus_rules" (list . "d8-monitoring") }} or (list . "d8-monitoring" (list "<chart path>" ...)) */ -}}
{{- /* One PrometheusRule per monitoring/prometheus-rules/**.yaml|tpl file of the chart (optionally only the listed */ -}}
{{- /* paths). A file holds a list of rule groups; .tpl files go through `tpl` first. Name: "<chart>-<path below */ -}}
{{- /* the root without extension, with /, space, dot and underscore as dashes>". __SCRAPE_INTERVAL__ and */ -}}
{{- /* __SCRAPE_INTERVAL_X_<2|3|4>__ become discovery.prometheusScrapeInterval (default 30s) times N; rules */ -}}
{{- /* annotated d8_ignore_on_update: "true" are muted while Deckhouse updates. Rendered only when the Prometheus */ -}}
{{- /* operator module (operator-prometheus or operator-prometheus-crd) is enabled. */ -}}
{{- define "helm_lib_prometheus_rules" -}}
  {{- $ctx := index . 0 -}}
  {{- $namespace := index . 1 -}}
  {{- $only := list -}}
  {{- if ge (len .) 3 -}}
    {{- $only = index . 2 | default list -}}
  {{- end -}}
  {{- $root := "monitoring/prometheus-rules" -}}
  {{- $enabled := $ctx.Values.global.enabledModules | default list -}}
  {{- if or (has "operator-prometheus-crd" $enabled) (has "operator-prometheus" $enabled) -}}
    {{- $interval := dig "discovery" "prometheusScrapeInterval" 30 $ctx.Values.global | int -}}
    {{- range $path, $_ := $ctx.Files.Glob (printf "%s/**.{yaml,tpl}" $root) -}}
      {{- if or (not $only) (has $path $only) -}}
        {{- $text := $ctx.Files.Get $path -}}
        {{- if hasSuffix ".tpl" $path -}}
          {{- $text = tpl $text $ctx -}}
        {{- end -}}
        {{- range $n := list 2 3 4 -}}
          {{- $text = replace (printf "__SCRAPE_INTERVAL_X_%d__" $n) (printf "%ds" (mul $interval $n)) $text -}}
        {{- end -}}
        {{- $text = replace "__SCRAPE_INTERVAL__" (printf "%ds" $interval) $text -}}
        {{- $parsed := printf "groups:\n%s" (indent 2 $text) | fromYaml -}}
        {{- if $parsed.Error -}}
          {{- fail (printf "%s: %s" $path ($parsed.Error | toString)) -}}
        {{- end -}}
        {{- range $group := $parsed.groups | default list -}}
          {{- range $rule := $group.rules | default list -}}
            {{- if eq (dig "annotations" "d8_ignore_on_update" "" $rule | toString) "true" -}}
              {{- $_ := set $rule "expr" (printf "(%s) and ON() ((max(d8_is_updating) != 1) or ON() absent(d8_is_updating))" $rule.expr) -}}
            {{- end -}}
          {{- end -}}
        {{- end -}}
        {{- $relative := regexReplaceAll "\\.(yaml|tpl)$" (trimPrefix (printf "%s/" $root) $path) "" -}}
        {{- $name := $relative | replace "/" "-" | replace " " "-" | replace "." "-" | replace "_" "-" -}}
        {{- if $parsed.groups }}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ printf "%s-%s" $ctx.Chart.Name $name }}
  namespace: {{ $namespace }}
  {{- include "helm_lib_module_labels" (list $ctx (dict "app" "prometheus" "prometheus" "main" "component" "rules")) | nindent 2 }}
spec:
  groups:
  {{- $parsed.groups | toYaml | nindent 2 }}
        {{- end -}}
      {{- end -}}
    {{- end -}}
  {{- end -}}
{{- end -}}


{{- /* ================================================================ grafana dashboards */ -}}

{{- /* Usage: {{- include "helm_lib_grafana_dashboard_definitions" . }} */ -}}
{{- /* One cluster-wide GrafanaDashboardDefinition per monitoring/grafana-dashboards/<folder>/**.json file of the */ -}}
{{- /* chart. The first directory below the root names the Grafana folder (dashes as spaces, each word capitalised); */ -}}
{{- /* the object is "d8-<chart>-<path below the root without .json, with /, space, dot and underscore as dashes>". */ -}}
{{- /* A file directly in the root, or one that is not JSON, fails the render. Rendered only when the prometheus-crd */ -}}
{{- /* module (the GrafanaDashboardDefinition CRD) is enabled. */ -}}
{{- define "helm_lib_grafana_dashboard_definitions" -}}
  {{- $ctx := . -}}
  {{- $root := "monitoring/grafana-dashboards" -}}
  {{- if has "prometheus-crd" ($ctx.Values.global.enabledModules | default list) -}}
    {{- range $path, $_ := $ctx.Files.Glob (printf "%s/**.json" $root) -}}
      {{- $parts := trimPrefix (printf "%s/" $root) $path | splitList "/" -}}
      {{- if lt (len $parts) 2 -}}
        {{- fail (printf "%s: dashboards live in a folder directory below %s" $path $root) -}}
      {{- end -}}
      {{- $definition := $ctx.Files.Get $path -}}
      {{- if hasKey (fromJson $definition) "Error" -}}
        {{- fail (printf "%s is not a JSON object" $path) -}}
      {{- end -}}
      {{- $folder := first $parts | replace "-" " " | title -}}
      {{- $name := regexReplaceAll "\\.json$" ($parts | join "/") "" | replace "/" "-" | replace " " "-" | replace "." "-" | replace "_" "-" }}
---
apiVersion: deckhouse.io/v1
kind: GrafanaDashboardDefinition
metadata:
  name: {{ printf "d8-%s-%s" $ctx.Chart.Name $name }}
  {{- include "helm_lib_module_labels" (list $ctx (dict "prometheus.deckhouse.io/grafana-dashboard" "")) | nindent 2 }}
spec:
  folder: {{ $folder | quote }}
  definition: |
    {{- $definition | nindent 4 }}
    {{- end -}}
  {{- end -}}
{{- end -}}
