{{- define "registry_node_step_lib" -}}
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

# Helpers shared by the three node steps. The chart places this file between each step's header
# and its body, so every NodeGroupConfiguration stays one self-contained script.

d8reg_tmp_files=()
d8reg_cleanup() {
  if [[ ${#d8reg_tmp_files[@]} -gt 0 ]]; then
    rm -f -- "${d8reg_tmp_files[@]}"
  fi
}
trap d8reg_cleanup EXIT

d8reg_log() {
  if declare -F bb-log-info >/dev/null 2>&1; then
    bb-log-info "d8-registry ${D8REG_STEP}: $*"
  else
    printf 'd8-registry %s: %s\n' "${D8REG_STEP}" "$*" >&2
  fi
}

d8reg_error() {
  if declare -F bb-log-error >/dev/null 2>&1; then
    bb-log-error "d8-registry ${D8REG_STEP}: $*"
  else
    printf 'd8-registry %s: ERROR: %s\n' "${D8REG_STEP}" "$*" >&2
  fi
}

d8reg_die() {
  d8reg_error "$*"
  exit 1
}

d8reg_valid_version() {
  local re='^[0-9a-f]{64}$'
  [[ $1 =~ $re ]]
}

d8reg_valid_host_dir() {
  local re='^[A-Za-z0-9.-]+(:[0-9]{1,5})?$'
  [[ ${#1} -le 255 && $1 =~ $re && $1 != "." && $1 != ".." ]]
}

d8reg_valid_file_name() {
  local re='^[A-Za-z0-9._:-]+$'
  [[ ${#1} -le 255 && $1 =~ $re && $1 != .* ]]
}

d8reg_valid_node_name() {
  local re='^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'
  [[ ${#1} -le 253 && $1 =~ $re ]]
}

# jq prints names as JSON strings, one per line: a name with a newline or a quote cannot split into
# two plausible names, it fails the strict pattern instead.
d8reg_unquote() {
  local re='^"([A-Za-z0-9._:-]*)"$'
  if [[ $1 =~ $re ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  else
    return 1
  fi
}

d8reg_node_name() {
  local name=""
  if declare -F bb-d8-node-name >/dev/null 2>&1; then
    name="$(bb-d8-node-name)"
  elif [[ -f "${NODE_NAME_FILE}" ]]; then
    name="$(<"${NODE_NAME_FILE}")"
  fi
  if ! d8reg_valid_node_name "${name}"; then
    d8reg_die "node name is missing or not a valid node name"
  fi
  printf '%s' "${name}"
}

# d8reg_compare DST COMMAND...: sets d8reg_same=1 when DST is a regular file (not a symlink) holding
# exactly what COMMAND prints, else 0. One sha256sum reads both; the file is not read at all when it is
# missing. Called as a plain command, never in a condition, so that `set -e` stays in force inside.
d8reg_same=0
d8reg_compare() {
  local dst="$1" sums second
  shift
  d8reg_same=0
  if [[ ! -f ${dst} || -L ${dst} ]]; then
    return 0
  fi
  sums="$("$@" | sha256sum -- - "${dst}")"
  # one line per input, each starting with its digest (sha256sum puts a backslash before the digest of
  # a file whose name it has to escape)
  second="${sums#*$'\n'}"
  second="${second#\\}"
  if [[ ${sums:0:64} == "${second:0:64}" ]]; then
    d8reg_same=1
  fi
}

d8reg_first_line_is_marker() {
  local first=""
  [[ -f $1 && ! -L $1 ]] || return 1
  IFS= read -r first <"$1" || true
  [[ ${first} == "${D8REG_MARKER}" ]]
}

# d8reg_put DST MODE OWNER COMMAND...: make DST hold exactly what COMMAND prints.
# Nothing is touched when the content is already there (a mode drift is fixed in place); otherwise the
# content goes to a temp file next to DST and replaces it with one rename, so readers never see half a
# file. Sets d8reg_wrote=1 when DST was replaced. Called as a plain command, never in a condition,
# so that `set -e` stays in force inside.
d8reg_wrote=0
d8reg_put() {
  local dst="$1" mode="$2" owner="$3"
  shift 3
  local tmp
  d8reg_wrote=0
  d8reg_compare "${dst}" "$@"
  if [[ ${d8reg_same} == 1 ]]; then
    if [[ "$(stat -c '%a' "${dst}")" != "${mode}" ]]; then
      chmod "${mode}" "${dst}"
    fi
    return 0
  fi
  tmp="$(mktemp "${dst%/*}/.d8reg.XXXXXX")"
  d8reg_tmp_files+=("${tmp}")
  "$@" >"${tmp}"
  chmod "${mode}" "${tmp}"
  if [[ -n ${owner} ]]; then
    chown "${owner}" "${tmp}"
  fi
  mv -f "${tmp}" "${dst}"
  d8reg_wrote=1
}

# d8reg_ensure_dir DIR MODE [shared]: create DIR (parents 0755) with MODE. The mode of an existing dir is
# corrected only for dirs the step owns; "shared" dirs (manifests, registry.d) keep what their owner set.
d8reg_ensure_dir() {
  local dir="$1" mode="$2" shared="${3:-}"
  if [[ ! -d ${dir} ]]; then
    (umask 022 && mkdir -p -- "${dir}")
    chmod "${mode}" "${dir}"
  elif [[ -z ${shared} && "$(stat -c '%a' "${dir}")" != "${mode}" ]]; then
    chmod "${mode}" "${dir}"
  fi
}

# Writes to the API are retried a bounded number of times; giving up fails the step so bashible retries.
d8reg_kubectl_write() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if kubectl "$@" >&2; then
      return 0
    fi
    d8reg_log "kubectl $2 failed (attempt ${attempt} of 5)"
    if [[ ${attempt} -lt 5 ]]; then
      sleep 10
    fi
  done
  d8reg_die "kubectl $2 failed 5 times"
}

# d8reg_payload_jq FILTER [JQ OPTION...]: prints what FILTER (jq -r) makes of the payload. The same jq start
# checks that the payload is one JSON object, so no step starts jq for that check alone; the step dies when
# the payload is not base64 or not exactly one JSON object (-s: jq sees all documents as one array, so an
# empty payload and a second document fail the check as well).
d8reg_payload_jq() {
  local filter="$1" json
  shift
  json="$(printf '%s' "${D8REG_PAYLOAD}" | base64 -d)" || d8reg_die "payload is not valid base64"
  jq -rs "$@" "if length == 1 and (.[0] | type) == \"object\" then .[0] | (${filter}) else error(\"not one object\") end" \
    2>/dev/null <<<"${json}" || d8reg_die "payload is not a JSON object"
}

{{ end }}
