{{- define "registry_node_step_containerd" -}}
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

# Body of NodeGroupConfiguration d8-registry-containerd.sh (SPEC 6.2). The chart puts four lines above it:
# strict mode, D8REG_VERSION and D8REG_PAYLOAD (base64 of the JSON payload). Nothing else carries data.

# The step may run traced (bash -x): decoded payload values (pull credentials) stay out of the trace.
set +x
export LC_ALL=C  # regex ranges and sorting must not depend on the node's locale
readonly ROOT="${D8_REGISTRY_NODE_ROOT:-}"
readonly D8REG_STEP='containerd'
readonly D8REG_MARKER='# managed by d8 registry module'

readonly HOSTS_ROOT="${ROOT}/etc/containerd/registry.d"
readonly CONTAINERD_DIR="${ROOT}/etc/containerd"
readonly CONFIG_TOML="${CONTAINERD_DIR}/config.toml"
readonly CONFIG_BACKUP="${CONTAINERD_DIR}/config.toml.d8-registry.bak"
readonly STATE_DIR="${ROOT}/var/lib/d8-registry"
readonly STATE_FILE="${STATE_DIR}/containerd-hosts-state.json"
readonly KUBELET_CONF="${ROOT}/etc/kubernetes/kubelet.conf"
readonly NODE_NAME_FILE="${ROOT}/var/lib/bashible/discovered-node-name"
# The value containerd must see; it is a path on the real node, so it never carries ROOT.
readonly CONFIG_PATH_VALUE='/etc/containerd/registry.d'
readonly LABEL_KEY='node.deckhouse.io/containerd-config-registry'
readonly VERSION_KEY='registry.deckhouse.io/version'

# Shared helpers (d8reg_*) come from templates/node/_lib.sh.tpl, placed above this body by the chart.

# -------------------------------------------------------------------------------- config.toml reading

# Prints one line per table header and key of a TOML file, tab-separated:
#   H <line> <path>            for [table] (and [[array]] as A)
#   K <line> <path> <value>    for key = value, with the path of the enclosing table prepended
# Quoted key segments are normalised (bare when possible, else double quotes), so both quote styles
# and any spacing compare equal. Multi-line strings are skipped; continuation lines of arrays do not
# look like keys. This is enough for containerd configs, which are flat TOML written by tools.
d8reg_toml_scan() {
  local file="$1"
  local line lineno=0 table="" rest path seg inner value in_multi="" matched
  local skip_re='^[[:space:]]*(#|$)'
  local seg_re="^[[:space:]]*(\"([^\"\\\\]|\\\\.)*\"|'[^']*'|[A-Za-z0-9_-]+)[[:space:]]*"
  local bare_re='^[A-Za-z0-9_-]+$'
  local header_re='^[[:space:]]*(\[\[?)(.*)$'
  while IFS= read -r line || [[ -n ${line} ]]; do
    lineno=$((lineno + 1))
    if [[ -n ${in_multi} ]]; then
      if [[ ${line} == *"${in_multi}"* ]]; then
        in_multi=""
      fi
      continue
    fi
    if [[ ${line} =~ ${skip_re} ]]; then
      continue
    fi
    local kind="K"
    rest="${line}"
    if [[ ${line} =~ ${header_re} ]]; then
      kind="H"
      if [[ ${BASH_REMATCH[1]} == "[[" ]]; then
        kind="A"
      fi
      rest="${BASH_REMATCH[2]}"
    fi
    path=""
    while [[ ${rest} =~ ${seg_re} ]]; do
      seg="${BASH_REMATCH[1]}"
      # no nested expansion here: its closing braces would end bashible's template action
      matched=${#BASH_REMATCH[0]}
      rest="${rest:matched}"
      if [[ ${seg} == \"* || ${seg} == \'* ]]; then
        inner="${seg:1:${#seg}-2}"
        if [[ ${inner} =~ ${bare_re} ]]; then
          seg="${inner}"
        else
          seg="\"${inner}\""
        fi
      fi
      path="${path:+${path}.}${seg}"
      if [[ ${rest} == .* ]]; then
        rest="${rest:1}"
      else
        break
      fi
    done
    if [[ -z ${path} ]]; then
      continue
    fi
    if [[ ${kind} != "K" ]]; then
      if [[ ${rest} == \]* ]]; then
        table="${path}"
        printf '%s\t%s\t%s\n' "${kind}" "${lineno}" "${path}"
      fi
      continue
    fi
    if [[ ${rest} != =* ]]; then
      continue
    fi
    value="${rest:1}"
    value="${value#"${value%%[![:space:]]*}"}"
    if [[ ${value} == '"""'* || ${value} == "'''"* ]]; then
      local delim="${value:0:3}"
      if [[ ${value:3} != *"${delim}"* ]]; then
        in_multi="${delim}"
      fi
    fi
    printf 'K\t%s\t%s\t%s\n' "${lineno}" "${table:+${table}.}${path}" "${value}"
  done <"${file}"
}

# The first top-level `version = N` (before any table header), or nothing.
d8reg_config_version() {
  local kind lineno path value
  [[ -f ${CONFIG_TOML} ]] || return 0
  while IFS=$'\t' read -r kind lineno path value; do
    if [[ ${kind} != "K" ]]; then
      return 0
    fi
    if [[ ${path} == "version" ]]; then
      value="${value%%#*}"
      value="${value//[[:space:]]/}"
      printf '%s' "${value}"
      return 0
    fi
  done < <(d8reg_toml_scan "${CONFIG_TOML}")
}

# Results of d8reg_inspect (globals keep the bash simple: no output parsing between functions).
custom_reason=""
config_path_present=0
config_path_empty_line=0
registry_header_line=0
registry_dotted=0

# d8reg_inspect FILE REGISTRY_PATH IS_MAIN: flags what makes the node unmanageable (SPEC 6.2 step 2).
d8reg_inspect() {
  local file="$1" reg="$2" is_main="$3"
  local kind lineno path value sub found_value
  local scan empty_re='^\{[[:space:]]*\}' dq_re='^"([^"]*)"' sq_re="^'([^']*)'"
  scan="$(d8reg_toml_scan "${file}")"
  [[ -n ${scan} ]] || return 0
  while IFS=$'\t' read -r kind lineno path value; do
    for sub in mirrors configs auths; do
      if [[ ${path} == "${reg}.${sub}."* ]]; then
        custom_reason="${file#"${ROOT}"} sets ${reg}.${sub} entries"
        return 0
      fi
      if [[ ${kind} == "K" && ${path} == "${reg}.${sub}" && ! ${value} =~ ${empty_re} ]]; then
        custom_reason="${file#"${ROOT}"} sets ${reg}.${sub}"
        return 0
      fi
    done
    if [[ ${kind} == "K" && ${path} == "${reg}" ]]; then
      custom_reason="${file#"${ROOT}"} writes the registry table inline"
      return 0
    fi
    if [[ ${kind} == "H" && ${path} == "${reg}" && ${is_main} == 1 ]]; then
      registry_header_line="${lineno}"
    fi
    if [[ ${kind} == "K" && ${path} == "${reg}.config_path" ]]; then
      found_value=""
      if [[ ${value} =~ ${dq_re} || ${value} =~ ${sq_re} ]]; then
        found_value="${BASH_REMATCH[1]}"
      fi
      if [[ -z ${found_value} && ${is_main} == 1 ]]; then
        # `config_path = ""` (containerd's own default config) means unset: the line gets our value
        config_path_empty_line="${lineno}"
        continue
      fi
      if [[ ${found_value} != "${CONFIG_PATH_VALUE}" ]]; then
        custom_reason="${file#"${ROOT}"} sets config_path to another directory"
        return 0
      fi
      if [[ ${is_main} == 1 ]]; then
        config_path_present=1
      fi
    fi
    if [[ ${is_main} == 1 && ${kind} == "K" && ${path} == "${reg}."* ]]; then
      registry_dotted=1
    fi
  done <<<"${scan}"
}

# ----------------------------------------------------------------------------------------------- payload

d8reg_valid_version "${D8REG_VERSION}" || d8reg_die "D8REG_VERSION is not a sha256 hex digest"
# One jq call reads the whole payload. First the four checks below, one word a line: does the version match,
# the kind (empty when it is none of the three), do hosts map dirs to {file: content}, and does every dir
# have files. Then, when hosts have that shape, the `dirs` of the state file (step 8) as one line of JSON
# and every file as `"dir"<TAB>"file"<TAB>base64 content`; the contents stay base64 until they are written.
# shellcheck disable=SC2016 # the $ names are jq variables
checks="$(d8reg_payload_jq '(.version == $v),
  (if .kind == "None" or .kind == "Transitional" or .kind == "Final" then .kind else "" end),
  (try ((.hosts // {}) | type == "object" and all(.[]; type == "object" and all(.[]; type == "string")))
    catch false) as $shape | $shape,
  (if $shape then (.hosts // {}) | all(.[]; length > 0) else false end),
  (if $shape then (.hosts // {}) | to_entries | sort_by(.key) | map(.value |= keys) | from_entries | tojson
    else null end),
  (if $shape then (.hosts // {}) | to_entries[] | .key as $d | .value | to_entries[]
    | "\($d | @json)\t\(.key | @json)\t\(.value | @base64)" else empty end)' --arg v "${D8REG_VERSION}")"
lines=""
{
  read -r version_ok; read -r kind; read -r hosts_ok; read -r hosts_full; read -r state_dirs
  IFS= read -r -d '' lines || true  # the rest
} <<<"${checks}"
lines="${lines%$'\n'}"  # without the final newline the here-string adds
[[ ${version_ok} == "true" ]] || d8reg_die "payload version does not match D8REG_VERSION"
case "${kind}" in
  None | Transitional | Final) ;;
  *) d8reg_die "payload kind must be None, Transitional or Final" ;;
esac
if [[ ${hosts_ok} != "true" ]]; then
  d8reg_die "payload hosts must map dirs to {file: content}"
fi

# Every name is checked before anything is written (SPEC 6.1 rule 2).
want_dirs=()
want_pairs=()
last_dir=""
declare -A want_files=()
if [[ ${hosts_full} != "true" ]]; then
  d8reg_die "payload has a hosts dir without files"
fi
if [[ -n ${lines} ]]; then
  while IFS=$'\t' read -r quoted quoted_file encoded; do
    dir="$(d8reg_unquote "${quoted}")" || d8reg_die "payload has an invalid hosts dir name"
    d8reg_valid_host_dir "${dir}" || d8reg_die "payload has an invalid hosts dir name"
    file="$(d8reg_unquote "${quoted_file}")" || d8reg_die "payload has an invalid file name in ${dir}"
    d8reg_valid_file_name "${file}" || d8reg_die "payload has an invalid file name in ${dir}"
    if [[ ${dir} != "${last_dir}" ]]; then
      want_dirs+=("${dir}")
      last_dir="${dir}"
    fi
    want_pairs+=("${dir}/${file}")
    want_files["${dir}/${file}"]="${encoded}"
  done <<<"${lines}"
fi
if [[ ${kind} != "None" && ${#want_dirs[@]} -eq 0 ]]; then
  d8reg_die "payload of kind ${kind} has no hosts dirs"
fi

node=""
if [[ -f ${KUBELET_CONF} ]]; then
  node="$(d8reg_node_name)"
fi

# The previous run's state: only names that pass the same checks are ever used in a path.
old_pairs=()
old_dirs=()
old_inserted_for=""
if [[ -f ${STATE_FILE} ]]; then
  # One jq call lists, for each JSON object in the file: `S`, `I<TAB>"configTomlInsertedFor"` (when it is a
  # string or unset), `P<TAB>"dir"/"file"` for each listed file and `D<TAB>"dir"` for each dir.
  if lines="$(jq -r 'select(type == "object") | "S",
      "I\t\(.configTomlInsertedFor // "" | strings | @json)",
      ((.dirs // {}) | objects | to_entries[] | .key as $d | (.value | arrays | .[]) as $f
        | "P\t\($d | @json)/\($f | @json)"),
      ((.dirs // {}) | objects | keys[] | "D\t\(@json)")' "${STATE_FILE}" 2>/dev/null)" && [[ -n ${lines} ]]; then
    inserted_count=0
    while IFS=$'\t' read -r tag value; do
      case "${tag}" in
        I)
          inserted_count=$((inserted_count + 1))
          old_inserted_for="$(d8reg_unquote "${value}")" || old_inserted_for=""
          ;;
        P)
          dir="$(d8reg_unquote "${value%%/*}")" || continue
          file="$(d8reg_unquote "${value#*/}")" || continue
          if d8reg_valid_host_dir "${dir}" && d8reg_valid_file_name "${file}"; then
            old_pairs+=("${dir}/${file}")
          fi
          ;;
        D)
          dir="$(d8reg_unquote "${value}")" || continue
          if d8reg_valid_host_dir "${dir}"; then
            old_dirs+=("${dir}")
          fi
          ;;
      esac
    done <<<"${lines}"
    # more than one object with a version is as unusable as an invalid one
    if [[ ${inserted_count} != 1 ]] || ! d8reg_valid_version "${old_inserted_for}"; then
      old_inserted_for=""
    fi
  else
    d8reg_error "state file is unreadable; nothing from a previous run will be removed"
  fi
fi

# ------------------------------------------------------------------------- 1-2. layout and preflight label

config_version="$(d8reg_config_version)"
registry_path=""
dropin_dir=""
case "${config_version}" in
  2)
    registry_path='plugins."io.containerd.grpc.v1.cri".registry'
    registry_header='[plugins."io.containerd.grpc.v1.cri".registry]'
    dropin_dir="${CONTAINERD_DIR}/conf.d"
    expected_major=1
    ;;
  3)
    registry_path='plugins."io.containerd.cri.v1.images".registry'
    registry_header="[plugins.'io.containerd.cri.v1.images'.registry]"
    dropin_dir="${CONTAINERD_DIR}/conf2.d"
    expected_major=2
    ;;
  *)
    if [[ -f ${CONFIG_TOML} ]]; then
      custom_reason="config.toml has an unsupported version"
    else
      custom_reason="config.toml is missing"
    fi
    ;;
esac

if [[ -n ${registry_path} ]]; then
  d8reg_inspect "${CONFIG_TOML}" "${registry_path}" 1
  if [[ -z ${custom_reason} && -d ${dropin_dir} ]]; then
    for dropin in "${dropin_dir}"/*.toml; do
      [[ -f ${dropin} ]] || continue
      d8reg_inspect "${dropin}" "${registry_path}" 0
      [[ -z ${custom_reason} ]] || break
    done
  fi
  if [[ -z ${custom_reason} && ${config_path_present} == 0 ]]; then
    if [[ ${kind} != "None" && ${old_inserted_for} == "${D8REG_VERSION}" ]]; then
      custom_reason="config.toml is regenerated by another tool without config_path"
    elif [[ ${config_path_empty_line} == 0 && ${registry_header_line} == 0 && ${registry_dotted} == 1 ]]; then
      custom_reason="config.toml defines the registry table with dotted keys"
    fi
  fi
fi

label="default"
if [[ -n ${custom_reason} ]]; then
  label="custom"
fi

# -------------------------------------------------------------------------------------------- 3. label

if [[ -n ${node} ]]; then
  d8reg_kubectl_write --kubeconfig "${KUBELET_CONF}" label node "${node}" --overwrite "${LABEL_KEY}=${label}"
fi

# ------------------------------------------------------------------------------------ 4. custom / none

if [[ ${label} == "custom" ]]; then
  d8reg_log "containerd configuration is custom, leaving it alone: ${custom_reason}"
  exit 0
fi

d8reg_remove_stale() {
  local pair dir file path
  # ${a[@]+"${a[@]}"}: bash 4.2 treats an empty array as unset under `set -u`
  for pair in ${old_pairs[@]+"${old_pairs[@]}"}; do
    if [[ -n ${want_files[${pair}]+x} ]]; then
      continue
    fi
    dir="${pair%%/*}"
    file="${pair#*/}"
    path="${HOSTS_ROOT}/${dir}/${file}"
    if d8reg_first_line_is_marker "${path}"; then
      rm -f -- "${path}"
      d8reg_log "removed ${path#"${ROOT}"}"
    elif [[ -e ${path} || -L ${path} ]]; then
      d8reg_log "not removing ${path#"${ROOT}"}: it does not carry the module marker"
    fi
  done
  local wanted
  for dir in ${old_dirs[@]+"${old_dirs[@]}"}; do
    wanted=0
    for file in ${want_dirs[@]+"${want_dirs[@]}"}; do
      if [[ ${file} == "${dir}" ]]; then
        wanted=1
      fi
    done
    path="${HOSTS_ROOT}/${dir}"
    if [[ ${wanted} == 0 && -d ${path} && ! -L ${path} ]]; then
      if [[ -z "$(ls -A -- "${path}")" ]]; then
        rmdir -- "${path}"
        d8reg_log "removed ${path#"${ROOT}"}"
      else
        d8reg_log "keeping ${path#"${ROOT}"}: it holds files the module does not own"
      fi
    fi
  done
}

if [[ ${kind} == "None" ]]; then
  d8reg_remove_stale
  if [[ -f ${STATE_FILE} ]]; then
    rm -f -- "${STATE_FILE}"
  fi
  exit 0
fi

# --------------------------------------------------------------------------------- 5. config_path

d8reg_candidate() {
  local lineno=0 line indent
  if [[ ${config_path_empty_line} -gt 0 || ${registry_header_line} -gt 0 ]]; then
    while IFS= read -r line || [[ -n ${line} ]]; do
      lineno=$((lineno + 1))
      if [[ ${lineno} == "${config_path_empty_line}" ]]; then
        indent="${line%%[![:space:]]*}"
        printf '%sconfig_path = "%s"\n' "${indent}" "${CONFIG_PATH_VALUE}"
        continue
      fi
      printf '%s\n' "${line}"
      if [[ ${config_path_empty_line} == 0 && ${lineno} == "${registry_header_line}" ]]; then
        indent="${line%%[![:space:]]*}"
        printf '%s  config_path = "%s"\n' "${indent}" "${CONFIG_PATH_VALUE}"
      fi
    done <"${CONFIG_TOML}"
  else
    cat -- "${CONFIG_TOML}"
    # $(...) drops a trailing newline, so a non-empty result means the file does not end with one
    if [[ -n "$(tail -c 1 -- "${CONFIG_TOML}")" ]]; then
      printf '\n'
    fi
    printf '\n%s\n  config_path = "%s"\n' "${registry_header}" "${CONFIG_PATH_VALUE}"
  fi
}

# containerd parses the candidate itself; skipped when the binary is absent or of the other major
# version (containerd 1.x silently drops version 3 sections, so it cannot judge them).
d8reg_check_candidate() {
  local candidate="$1" version_line major dump
  if ! command -v containerd >/dev/null 2>&1; then
    d8reg_log "containerd binary not found, candidate config.toml not checked"
    return 0
  fi
  version_line="$(containerd --version 2>/dev/null || true)"
  major="$(printf '%s' "${version_line}" | { read -r _ _ ver _ || true; ver="${ver#v}"; printf '%s' "${ver%%.*}"; })"
  if [[ ${major} != "${expected_major}" ]]; then
    d8reg_log "containerd major version ${major:-unknown} does not read config version ${config_version}, candidate not checked"
    return 0
  fi
  dump="$(containerd --config "${candidate}" config dump)" \
    || d8reg_die "containerd rejects config.toml with config_path; config.toml left unchanged"
  # containerd 1.x dumps TOML strings in double quotes, 2.x in single quotes
  if [[ ${dump} != *"config_path = \"${CONFIG_PATH_VALUE}\""* && ${dump} != *"config_path = '${CONFIG_PATH_VALUE}'"* ]]; then
    d8reg_die "containerd does not see config_path in the candidate config.toml; config.toml left unchanged"
  fi
  local mirrors_re='registry\.mirrors\."'
  if [[ ${config_version} == 2 && ${dump} =~ ${mirrors_re} ]]; then
    d8reg_die "the candidate config.toml still has registry mirrors; config.toml left unchanged"
  fi
}

inserted_for="${old_inserted_for}"
config_replaced=0
if [[ ${config_path_present} == 0 ]]; then
  candidate="$(mktemp "${CONTAINERD_DIR}/.d8reg.XXXXXX")"
  d8reg_tmp_files+=("${candidate}")
  d8reg_candidate >"${candidate}"
  chmod "$(stat -c '%a' "${CONFIG_TOML}")" "${candidate}"
  d8reg_check_candidate "${candidate}"
  if [[ ! -e ${CONFIG_BACKUP} ]]; then
    backup="$(mktemp "${CONTAINERD_DIR}/.d8reg.XXXXXX")"
    d8reg_tmp_files+=("${backup}")
    cp -p -- "${CONFIG_TOML}" "${backup}"
    mv -f -- "${backup}" "${CONFIG_BACKUP}"
  fi
  mv -f -- "${candidate}" "${CONFIG_TOML}"
  inserted_for="${D8REG_VERSION}"
  config_replaced=1
  d8reg_log "inserted config_path into config.toml"
fi

# ------------------------------------------------------------------------------ 6. hosts dirs and files

d8reg_payload_file() {
  printf '%s' "${want_files[$1]}" | base64 -d
}

d8reg_ensure_dir "${HOSTS_ROOT}" 755 shared
for dir in ${want_dirs[@]+"${want_dirs[@]}"}; do
  d8reg_ensure_dir "${HOSTS_ROOT}/${dir}" 755
done
# containerd reads hosts.toml at every pull: the CA files a hosts.toml names are in place before it is
# (pass 1: everything else, pass 2: hosts.toml); files it no longer names go only after it, in step 7
for pass in 1 2; do
  for pair in ${want_pairs[@]+"${want_pairs[@]}"}; do
    dir="${pair%%/*}"
    file="${pair#*/}"
    if [[ (${pass} == 1 && ${file} == "hosts.toml") || (${pass} == 2 && ${file} != "hosts.toml") ]]; then
      continue
    fi
    d8reg_put "${HOSTS_ROOT}/${dir}/${file}" 644 "" d8reg_payload_file "${pair}"
    if [[ ${d8reg_wrote} == 1 ]]; then
      d8reg_log "wrote ${HOSTS_ROOT#"${ROOT}"}/${dir}/${file}"
    fi
  done
done

# ---------------------------------------------------------------------------------- 7. stale entries

d8reg_remove_stale

# ------------------------------------------------------------------------------------------ 8. state

# The state as `jq -cS` would print it (keys sorted, no spaces). Nothing in it is unchecked: every name in
# state_dirs passed the checks above and both versions are hex digests.
d8reg_state_json() {
  local inserted="null"
  if [[ -n ${inserted_for} ]]; then
    inserted="\"${inserted_for}\""
  fi
  printf '{"configTomlInsertedFor":%s,"dirs":%s,"format":1,"version":"%s"}\n' \
    "${inserted}" "${state_dirs}" "${D8REG_VERSION}"
}

d8reg_ensure_dir "${STATE_DIR}" 755
d8reg_put "${STATE_FILE}" 644 "" d8reg_state_json

# --------------------------------------------------------------------------------------- 9. restart

if [[ ${config_replaced} == 1 ]]; then
  d8reg_log "restarting containerd to load config_path"
  systemctl restart containerd
  ready=0
  for _ in $(seq 1 60); do
    if crictl info >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 1
  done
  [[ ${ready} == 1 ]] || d8reg_die "containerd did not answer crictl info within 60 seconds after the restart"
fi

# ------------------------------------------------------------------------------------------ 10. report

if [[ -n ${node} ]]; then
  d8reg_kubectl_write --kubeconfig "${KUBELET_CONF}" annotate node "${node}" --overwrite "${VERSION_KEY}=${D8REG_VERSION}"
else
  d8reg_log "kubelet.conf not present yet, the node version is reported on the next run"
fi
{{ end }}
