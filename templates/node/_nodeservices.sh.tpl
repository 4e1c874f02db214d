{{- define "registry_node_step_nodeservices" -}}
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

# Body of NodeGroupConfiguration d8-registry-nodeservices.sh (SPEC 6.6), masters only: the registry-service
# static pod. Its payload is empty; the data comes from this master's own Secret, read with the
# control-plane admin kubeconfig, so private keys never travel through NodeGroupConfigurations.

# The step may run traced (bash -x): the Secret holds private keys and passwords, they stay out of the trace.
set +x
# every file is created private first (mktemp makes 0600 anyway) and only then given its final mode
umask 077
export LC_ALL=C  # regex ranges and sorting must not depend on the node's locale
readonly ROOT="${D8_REGISTRY_NODE_ROOT:-}"
readonly D8REG_STEP='nodeservices'
readonly D8REG_MARKER='# managed by d8 registry module'
readonly D8REG_DIR_MARKER='.managed-by-d8-registry'
readonly NODE_NAME_FILE="${ROOT}/var/lib/bashible/discovered-node-name"

readonly ADMIN_CONF="${ROOT}/etc/kubernetes/admin.conf"
readonly REG_DIR="${ROOT}/etc/kubernetes/registry"
readonly MANIFESTS_DIR="${ROOT}/etc/kubernetes/manifests"
readonly MANIFEST="${MANIFESTS_DIR}/registry-nodeservices.yaml"
readonly PROXY_DATA="${ROOT}/opt/deckhouse/registry/proxy_data"
readonly LOCAL_DATA="${ROOT}/opt/deckhouse/registry/local_data"
# The containers run as this user and read their config from the host directories.
readonly POD_OWNER='64535:64535'
readonly MANIFEST_KEY='registry-nodeservices.yaml'
# Allow-list of Secret keys written to disk; any other key is ignored.
readonly FILE_KEYS=(ca.crt front.crt upstream-ca.crt front.key nginx.conf htpasswd config.yaml regsync.yaml)
readonly MAX_RESTART_DELAY=3600

# Shared helpers (d8reg_*) come from templates/node/_lib.sh.tpl, placed above this body by the chart.

d8reg_key_path() {
  case "$1" in
    ca.crt | front.crt | upstream-ca.crt | front.key) printf '%s' "${REG_DIR}/pki/$1" ;;
    nginx.conf | htpasswd) printf '%s' "${REG_DIR}/front/$1" ;;
    config.yaml) printf '%s' "${REG_DIR}/distribution/$1" ;;
    regsync.yaml) printf '%s' "${REG_DIR}/sync/$1" ;;
    *) return 1 ;;
  esac
}

d8reg_key_mode() {
  case "$1" in
    front.key | htpasswd | config.yaml | regsync.yaml) printf '600' ;;
    *) printf '640' ;;
  esac
}

d8reg_valid_image() {
  local re='^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$'
  [[ $1 =~ $re ]]
}

# Secret data, base64 as the API returns it, for the keys the step knows (filled once after validation).
declare -A secret_data=()

d8reg_has_key() {
  [[ -n ${secret_data[$1]+x} ]]
}

d8reg_secret_value() {
  printf '%s' "${secret_data[$1]}" | base64 -d
}

# The manifest is removable later only when its first line is the marker; add it if the producer did not.
d8reg_manifest_content() {
  if [[ ${manifest_text%%$'\n'*} != "${D8REG_MARKER}" ]]; then
    printf '%s\n' "${D8REG_MARKER}"
  fi
  d8reg_secret_value "${MANIFEST_KEY}"
}

d8reg_marker_content() {
  printf '%s\n' "${D8REG_MARKER}"
}

# Owned dirs get the pod user when this step creates them or takes them over (TAKEOVER=1); ownership is
# not re-asserted on every run, so an unchanged node sees no writes at all.
d8reg_owned_dir() {
  local dir="$1" mode="$2" takeover="${3:-0}"
  if [[ ! -d ${dir} || ${takeover} == 1 ]]; then
    d8reg_ensure_dir "${dir}" "${mode}"
    chown "${POD_OWNER}" "${dir}"
  else
    d8reg_ensure_dir "${dir}" "${mode}"
  fi
}

d8reg_cleanup_all() {
  if d8reg_first_line_is_marker "${MANIFEST}"; then
    # the pod goes first, so it never runs on half-removed config
    rm -f -- "${MANIFEST}"
    d8reg_log "removed ${MANIFEST#"${ROOT}"}"
  elif [[ -e ${MANIFEST} ]]; then
    d8reg_log "not removing ${MANIFEST#"${ROOT}"}: it does not carry the module marker"
  fi
  local dir
  for dir in "${REG_DIR}" "${PROXY_DATA}"; do
    if [[ -d ${dir} && ! -L ${dir} && -f "${dir}/${D8REG_DIR_MARKER}" ]]; then
      rm -rf -- "${dir}"
      d8reg_log "removed ${dir#"${ROOT}"}"
    elif [[ -e ${dir} ]]; then
      d8reg_log "not removing ${dir#"${ROOT}"}: it does not carry ${D8REG_DIR_MARKER}"
    fi
  done
  # local_data holds pushed images that exist nowhere else: never removed automatically
}

# ----------------------------------------------------------------------------------------------- inputs

d8reg_valid_version "${D8REG_VERSION}" || d8reg_die "D8REG_VERSION is not a sha256 hex digest"
# This step's data is in its Secret: the chart's payload is always {} (e30= in base64), which needs no jq
# start; any other payload is checked like the other steps' payloads.
if [[ ${D8REG_PAYLOAD} != "e30=" ]]; then
  d8reg_payload_jq 'empty'
fi
node="$(d8reg_node_name)"
readonly SECRET_NAME="registry-node-config-${node}"

if [[ ! -f ${ADMIN_CONF} ]]; then
  # not a control-plane node yet; without the admin credentials the Secret cannot be read, and
  # "cannot read" must never be taken for "absent"
  d8reg_log "admin.conf not present, nothing to do until the control plane is up"
  exit 0
fi

# --ignore-not-found: empty output with rc 0 is "absent"; any failure is an error, never "absent"
secret_json="$(kubectl --kubeconfig "${ADMIN_CONF}" -n d8-system get secret "${SECRET_NAME}" --ignore-not-found -o json)" \
  || d8reg_die "cannot read Secret d8-system/${SECRET_NAME}; nothing changed"

if [[ -z ${secret_json//[[:space:]]/} ]]; then
  d8reg_cleanup_all
  exit 0
fi

# One jq call checks the Secret (one JSON document, -s as for the payload) and lists its data, one key a
# line: `"key"<TAB>base64 value`. Only allow-listed names are kept; the rest is never looked at again.
lines="$(jq -rs 'if length == 1 and (.[0] | .kind == "Secret" and (.data | type == "object")
    and (.data | all(.[]; type == "string" and test("\\A[A-Za-z0-9+/=]*\\z"))))
  then .[0].data | to_entries[] | "\(.key | @json)\t\(.value)" else error("not a Secret") end' \
  2>/dev/null <<<"${secret_json}")" \
  || d8reg_die "Secret d8-system/${SECRET_NAME} is not a Secret with base64 data; nothing changed"
if [[ -n ${lines} ]]; then
  while IFS=$'\t' read -r quoted value; do
    case "${quoted}" in
      '"ca.crt"' | '"front.crt"' | '"upstream-ca.crt"' | '"front.key"' | '"nginx.conf"' | '"htpasswd"' | \
        '"config.yaml"' | '"regsync.yaml"' | '"registry-nodeservices.yaml"' | '"version"' | '"images"' | \
        '"restart_delay_seconds"')
        key="${quoted:1:${#quoted}-2}"
        secret_data["${key}"]="${value}"
        ;;
    esac
  done <<<"${lines}"
fi

# Values and control keys are checked before anything is written (SPEC 6.1 rule 2).
for key in ${secret_data[@]+"${!secret_data[@]}"}; do
  d8reg_secret_value "${key}" >/dev/null 2>&1 || d8reg_die "Secret key ${key} is not valid base64; nothing changed"
done
version=""
if d8reg_has_key version; then
  version="$(d8reg_secret_value version)"
  d8reg_valid_version "${version}" || d8reg_die "Secret key version is not a sha256 hex digest"
fi
restart_delay=0
if d8reg_has_key restart_delay_seconds; then
  restart_delay="$(d8reg_secret_value restart_delay_seconds)"
  delay_re='^[0-9]{1,4}$'
  if [[ ! ${restart_delay} =~ ${delay_re} ]] || [[ $((10#${restart_delay})) -gt ${MAX_RESTART_DELAY} ]]; then
    d8reg_die "Secret key restart_delay_seconds is not a number of seconds up to ${MAX_RESTART_DELAY}"
  fi
  restart_delay=$((10#${restart_delay}))
fi
images=()
if d8reg_has_key images; then
  images_text="$(d8reg_secret_value images)"
  while IFS= read -r ref; do
    [[ -n ${ref} ]] || continue
    d8reg_valid_image "${ref}" || d8reg_die "Secret key images has an invalid image reference"
    images+=("${ref}")
  done <<<"${images_text}"
fi
manifest_text=""
has_manifest=0
if d8reg_has_key "${MANIFEST_KEY}"; then
  has_manifest=1
  manifest_text="$(d8reg_secret_value "${MANIFEST_KEY}")"
fi
d8reg_log "applying node services config ${version:-without a version}"

# ------------------------------------------------------------------------------------ config files

takeover=0
if [[ ! -f "${REG_DIR}/${D8REG_DIR_MARKER}" ]]; then
  takeover=1
fi
d8reg_owned_dir "${REG_DIR}" 750 "${takeover}"
d8reg_owned_dir "${REG_DIR}/pki" 700 "${takeover}"
for sub in front distribution sync; do
  d8reg_owned_dir "${REG_DIR}/${sub}" 750 "${takeover}"
done
# the marker last: an interrupted first run is taken over again on the next one
d8reg_put "${REG_DIR}/${D8REG_DIR_MARKER}" 640 "${POD_OWNER}" d8reg_marker_content

for key in "${FILE_KEYS[@]}"; do
  path="$(d8reg_key_path "${key}")"
  if d8reg_has_key "${key}"; then
    d8reg_put "${path}" "$(d8reg_key_mode "${key}")" "${POD_OWNER}" d8reg_secret_value "${key}"
    if [[ ${d8reg_wrote} == 1 ]]; then
      d8reg_log "wrote ${path#"${ROOT}"}"
    fi
  elif [[ -f ${path} || -L ${path} ]]; then
    # the whole dir carries the module marker, so everything at an allow-listed path is ours
    rm -f -- "${path}"
    d8reg_log "removed ${path#"${ROOT}"}: no longer in the Secret"
  fi
done

# --------------------------------------------------------------------------------------- data dirs

if [[ ${manifest_text} == *"/opt/deckhouse/registry/proxy_data"* ]]; then
  takeover=0
  if [[ ! -f "${PROXY_DATA}/${D8REG_DIR_MARKER}" ]]; then
    takeover=1
  fi
  d8reg_owned_dir "${PROXY_DATA}" 700 "${takeover}"
  d8reg_put "${PROXY_DATA}/${D8REG_DIR_MARKER}" 640 "" d8reg_marker_content
fi
if [[ ${manifest_text} == *"/opt/deckhouse/registry/local_data"* ]]; then
  d8reg_owned_dir "${LOCAL_DATA}" 700
fi

# -------------------------------------------------------------------------------------- manifest

if [[ ${has_manifest} == 0 ]]; then
  if d8reg_first_line_is_marker "${MANIFEST}"; then
    rm -f -- "${MANIFEST}"
    d8reg_log "removed ${MANIFEST#"${ROOT}"}: no longer in the Secret"
  fi
  exit 0
fi

d8reg_compare "${MANIFEST}" d8reg_manifest_content
if [[ ${d8reg_same} == 0 ]]; then
  # Images first: a failed pull keeps the old pod running instead of starting one that cannot pull.
  for ref in ${images[@]+"${images[@]}"}; do
    crictl pull "${ref}" >&2 || d8reg_die "crictl pull ${ref} failed; the running pod is left as it is"
  done
  if [[ ${restart_delay} -gt 0 ]]; then
    # masters restart one after another, so the registry service is never down everywhere at once
    d8reg_log "waiting ${restart_delay}s before restarting the registry service pod"
    sleep "${restart_delay}"
  fi
  d8reg_ensure_dir "${MANIFESTS_DIR}" 755 shared
  d8reg_put "${MANIFEST}" 600 "" d8reg_manifest_content
  d8reg_log "wrote ${MANIFEST#"${ROOT}"}"
fi
{{ end }}
