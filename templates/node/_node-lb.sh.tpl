{{- define "registry_node_step_node_lb" -}}
# Copyright 2026 Flant JSC
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# shellcheck shell=bash

# Body of NodeGroupConfiguration d8-registry-node-lb.sh (SPEC 5.9, 6.5): the node load balancer static pod.
# The chart puts four lines above it: strict mode, D8REG_VERSION and D8REG_PAYLOAD (base64 of the JSON
# payload {version, endpoints, image, files}). Nothing else carries data.

# The step may run traced (bash -x): the decoded payload stays out of the trace, as in the other steps.
set +x
export LC_ALL=C  # regex ranges and sorting must not depend on the node's locale
readonly ROOT="${D8_REGISTRY_NODE_ROOT:-}"
readonly D8REG_STEP='node-lb'
readonly D8REG_MARKER='# managed by d8 registry module'
readonly D8REG_DIR_MARKER='.managed-by-d8-registry'
readonly NODE_NAME_FILE="${ROOT}/var/lib/bashible/discovered-node-name"

readonly LB_DIR="${ROOT}/etc/kubernetes/registry-proxy"
readonly NGINX_CONF="${LB_DIR}/nginx.conf"
readonly MANIFESTS_DIR="${ROOT}/etc/kubernetes/manifests"
readonly MANIFEST="${MANIFESTS_DIR}/registry-proxy.yaml"
# nginx in the pod runs as this user and reads its config from the host directory.
readonly POD_OWNER='64535:64535'

# Shared helpers (d8reg_*) come from templates/node/_lib.sh.tpl, placed above this body by the chart.

d8reg_valid_endpoint() {
  local re='^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3}):5001$' i
  [[ $1 =~ $re ]] || return 1
  for i in 1 2 3 4; do
    # base 10 explicitly: a leading zero must not turn an octet into octal
    [[ $((10#${BASH_REMATCH[i]})) -le 255 ]] || return 1
  done
}

# What crictl receives as an argument: a reference, never something that looks like an option.
d8reg_valid_image() {
  local re='^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$'
  [[ $1 =~ $re ]]
}

# nginx.conf and the manifest, base64 as listed below; decoded only where they are written or compared
declare -A lb_files=()

d8reg_payload_file() {
  printf '%s' "${lb_files[$1]}" | base64 -d
}

# The manifest is removable later only when its first line is the marker; add it if the producer did not.
d8reg_manifest_content() {
  if [[ ${manifest_marked} != "true" ]]; then
    printf '%s\n' "${D8REG_MARKER}"
  fi
  d8reg_payload_file "registry-proxy.yaml"
}

d8reg_marker_content() {
  printf '%s\n' "${D8REG_MARKER}"
}

# ----------------------------------------------------------------------------------------------- payload

d8reg_valid_version "${D8REG_VERSION}" || d8reg_die "D8REG_VERSION is not a sha256 hex digest"
# One jq call reads the whole payload and lists, one item a line: `version<TAB>true|false` (does it match),
# `shape<TAB>true|false` (does the payload have its shape) and, with that shape, everything else the step
# reads: `image<TAB>base64 ref`, `endpoint<TAB>"ip:port"` for each endpoint, `file<TAB>name<TAB>base64
# content` for nginx.conf and the manifest, and `marked<TAB>true|false` (does the manifest start with the marker).
version_ok=false
shape_ok=false
image_encoded=""
manifest_marked=false
endpoints=()
# shellcheck disable=SC2016 # the $ names are jq variables
lines="$(d8reg_payload_jq '"version\t\(.version == $v)",
  (try ((.endpoints | type == "array" and all(.[]; type == "string"))
    and ((.image // "") | type == "string")
    and ((.files // {}) | type == "object" and all(.[]; type == "string"))) catch false) as $shape
  | "shape\t\($shape)",
  (if $shape then "image\t\((.image // "") | @base64)",
    (.endpoints[] | "endpoint\t\(@json)"),
    ((.files // {}) | to_entries[] | select(.key == "nginx.conf" or .key == "registry-proxy.yaml")
      | "file\t\(.key)\t\(.value | @base64)"),
    "marked\t\((.files // {})["registry-proxy.yaml"] // "" | split("\n")[0] == $m)" else empty end)' \
  --arg v "${D8REG_VERSION}" --arg m "${D8REG_MARKER}")"
while IFS=$'\t' read -r tag value encoded; do
  case "${tag}" in
    version) version_ok="${value}" ;;
    shape) shape_ok="${value}" ;;
    image) image_encoded="${value}" ;;
    endpoint) endpoints+=("${value}") ;;
    file) lb_files["${value}"]="${encoded}" ;;
    marked) manifest_marked="${value}" ;;
  esac
done <<<"${lines}"
[[ ${version_ok} == "true" ]] || d8reg_die "payload version does not match D8REG_VERSION"
if [[ ${shape_ok} != "true" ]]; then
  d8reg_die "payload must have endpoints (strings), image (string) and files (strings)"
fi

endpoint_count=0
endpoint_re='^"([0-9.:]*)"$'
for quoted in ${endpoints[@]+"${endpoints[@]}"}; do
  [[ ${quoted} =~ ${endpoint_re} ]] || d8reg_die "payload has an invalid LB endpoint"
  d8reg_valid_endpoint "${BASH_REMATCH[1]}" || d8reg_die "payload has an invalid LB endpoint"
  endpoint_count=$((endpoint_count + 1))
done

# ------------------------------------------------------------------------------- no endpoints: removal

if [[ ${endpoint_count} == 0 ]]; then
  if d8reg_first_line_is_marker "${MANIFEST}"; then
    # the pod goes first, so nginx never runs without its config
    rm -f -- "${MANIFEST}"
    d8reg_log "removed ${MANIFEST#"${ROOT}"}"
  elif [[ -e ${MANIFEST} ]]; then
    # someone else's pod may read this config: leave both alone
    d8reg_log "not removing ${MANIFEST#"${ROOT}"}: it does not carry the module marker"
    exit 0
  fi
  if [[ -d ${LB_DIR} && ! -L ${LB_DIR} && -f "${LB_DIR}/${D8REG_DIR_MARKER}" ]]; then
    rm -rf -- "${LB_DIR}"
    d8reg_log "removed ${LB_DIR#"${ROOT}"}"
  elif [[ -e ${LB_DIR} ]]; then
    d8reg_log "not removing ${LB_DIR#"${ROOT}"}: it does not carry ${D8REG_DIR_MARKER}"
  fi
  exit 0
fi

# ---------------------------------------------------------------------------------------- endpoints

image="$(printf '%s' "${image_encoded}" | base64 -d)"
[[ -n ${lb_files["nginx.conf"]+x} ]] || d8reg_die "payload has endpoints but no nginx.conf"
has_manifest=false
if [[ -n ${lb_files["registry-proxy.yaml"]+x} ]]; then
  has_manifest=true
fi
if [[ -n ${image} ]]; then
  d8reg_valid_image "${image}" || d8reg_die "payload has an invalid LB image reference"
fi

d8reg_ensure_dir "${LB_DIR}" 750
if [[ ! -f "${LB_DIR}/${D8REG_DIR_MARKER}" ]]; then
  chown "${POD_OWNER}" "${LB_DIR}"
fi
d8reg_put "${LB_DIR}/${D8REG_DIR_MARKER}" 640 "${POD_OWNER}" d8reg_marker_content
d8reg_put "${NGINX_CONF}" 640 "${POD_OWNER}" d8reg_payload_file "nginx.conf"
if [[ ${d8reg_wrote} == 1 ]]; then
  d8reg_log "wrote ${NGINX_CONF#"${ROOT}"}"
fi

if [[ -z ${image} || ${has_manifest} != "true" ]]; then
  # without an image there is no pod to run; containerd reaches the masters directly meanwhile
  d8reg_error "payload has no LB image or manifest; the node LB pod is not started"
  exit 0
fi

d8reg_compare "${MANIFEST}" d8reg_manifest_content
if [[ ${d8reg_same} == 0 ]]; then
  # pulled before kubelet sees the new manifest, so the pod starts without waiting for the image;
  # a failed pull is not fatal: the pod pulls it itself and containerd can reach the masters directly
  if ! crictl pull "${image}" >&2; then
    d8reg_error "crictl pull of the LB image failed; kubelet will pull it when it starts the pod"
  fi
  d8reg_ensure_dir "${MANIFESTS_DIR}" 755 shared
  d8reg_put "${MANIFEST}" 600 "" d8reg_manifest_content
  d8reg_log "wrote ${MANIFEST#"${ROOT}"}"
fi
{{ end }}
