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
"""Replaying addon-operator's snapshot dump of a real cluster through one hook.

addon-operator's debug server (`deckhouse-controller module snapshots registry -o json`) prints
`{<hook name>: {<binding name>: {"snapshot": [{"object": ..., "filterResult": ...}], "operations": {...}}}}`.
This module checks such a dump against the hook's own bindings, turns it into the binding context
the hook would receive (a Group context for grouped bindings), runs the hook through the real
protocol and explains the outcome: the settings verdict, the stage it waits in and on what, the
values patch, the Kubernetes operations and what the next Helm render would change.
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from . import helm, redact
from .operator import bindings, values_rules
from .operator.module import ModuleHarness
from .operator.values_rules import MODULE


class SnapshotDumpError(ValueError):
    """The dump (or the values beside it) cannot be what addon-operator printed for this hook."""


# -- reading -------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_document(path: str, what: str) -> Any:
    """A JSON or YAML file (JSON is YAML); a one-line error when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotDumpError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SnapshotDumpError(f"{what} {path} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SnapshotDumpError(f"{what} {path} is neither JSON nor YAML: {_one_line(exc)[:300]}") from None


def _hook_stem(name: str) -> str:
    """'registry/hooks/orchestrator.py', '040-registry/hooks/orchestrator.py', 'orchestrator' -> 'orchestrator'."""
    last = str(name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".py", ".sh", ".go"):
        if last.endswith(suffix):
            return last[: -len(suffix)]
    return last


def _looks_like_bindings(section: Any) -> bool:
    return isinstance(section, dict) and bool(section) and all(
        isinstance(value, dict) and "snapshot" in value for value in section.values())


def hook_section(dump: Any, hook_name: str, binding_names: list[str]) -> tuple[str, dict]:
    """The dump's entry for this hook: (the name the dump uses, {binding: entry}).

    Accepts the whole module dump (hook names with or without the module path prefix) or just the
    hook's own section (a mapping of binding names)."""
    if not isinstance(dump, dict):
        raise SnapshotDumpError(f"snapshot dump must be a mapping of hook names, got {_type_name(dump)}")
    wanted = _hook_stem(hook_name)
    matches = [key for key in dump if isinstance(key, str) and _hook_stem(key) == wanted]
    if len(matches) > 1:
        raise SnapshotDumpError(f"snapshot dump has several hooks named {wanted}: {', '.join(sorted(matches))}")
    if matches:
        section = dump[matches[0]]
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise SnapshotDumpError(f"hook {matches[0]}: must map binding names to snapshots, "
                                    f"got {type(section).__name__}")
        return matches[0], section
    if set(dump) & set(binding_names) and _looks_like_bindings(dump):
        return wanted, dump
    found = ", ".join(sorted(str(key) for key in dump)) or "none"
    raise SnapshotDumpError(f"snapshot dump has no hook {wanted} (hooks in the dump: {found})")


_PROBE_META = {"name": "probe", "namespace": "d8-system", "labels": {}, "annotations": {}}


def _template(binding: dict) -> Any:
    """What the binding's jqFilter gives for a bare object of its kind: the shape every result has."""
    probe = {"apiVersion": binding.get("apiVersion", "v1"), "kind": binding.get("kind", ""),
             "metadata": copy.deepcopy(_PROBE_META), "spec": {}, "status": {}}
    return bindings.apply_jq_filter(binding.get("jqFilter"), probe)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _check_shape(binding: dict, result: Any, where: str) -> None:
    template = _template(binding)
    name = binding["name"]
    if isinstance(template, dict):
        if not isinstance(result, dict):
            raise SnapshotDumpError(f"binding {name}: {where} is {_type_name(result)}, the binding's jqFilter gives "
                                    f"an object with keys {', '.join(sorted(template))}")
        if set(result) != set(template):
            missing, extra = sorted(set(template) - set(result)), sorted(set(result) - set(template))
            detail = "; ".join(part for part in (
                f"missing {', '.join(missing)}" if missing else "", f"unexpected {', '.join(extra)}" if extra else "")
                if part)
            raise SnapshotDumpError(f"binding {name}: {where} has another shape than the binding's jqFilter gives "
                                    f"({detail}); is the dump from another module version?")
        for key, expected in template.items():
            value = result[key]
            if expected is None or value is None:
                continue
            same = isinstance(value, bool) == isinstance(expected, bool) and (
                type(value) is type(expected) or (isinstance(value, int | float) and isinstance(expected, int | float)
                                                  and not isinstance(value, bool)))
            if not same:
                raise SnapshotDumpError(f"binding {name}: {where}.{key} is {_type_name(value)}, expected "
                                        f"{_type_name(expected)}")
    elif isinstance(template, list):
        if not isinstance(result, list):
            raise SnapshotDumpError(f"binding {name}: {where} is {_type_name(result)}, the binding's jqFilter gives "
                                    "a list")
    elif result is not None and not isinstance(result, dict):
        # filters such as '.data' give an object, or null when the field is absent
        raise SnapshotDumpError(f"binding {name}: {where} is {_type_name(result)}, expected an object or null")


def binding_snapshot(binding: dict, entry: Any) -> list[dict]:
    """One binding's dump entry checked against the binding and turned into the hook's snapshot list."""
    name = binding["name"]
    if not isinstance(entry, dict):
        raise SnapshotDumpError(f"binding {name}: must be an object with 'snapshot', got {_type_name(entry)}")
    if "snapshot" not in entry:
        raise SnapshotDumpError(f"binding {name}: has no 'snapshot' list")
    items = entry["snapshot"]
    if items is None:  # an empty Go slice marshals as null
        items = []
    if not isinstance(items, list):
        raise SnapshotDumpError(f"binding {name}: 'snapshot' must be a list, got {_type_name(items)}")
    out = []
    for index, item in enumerate(items):
        where = f"snapshot[{index}]"
        if not isinstance(item, dict):
            raise SnapshotDumpError(f"binding {name}: {where} must be an object, got {_type_name(item)}")
        obj = item.get("object")
        if obj is not None:
            if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
                raise SnapshotDumpError(f"binding {name}: {where}.object is not a Kubernetes object")
            kind = str(obj.get("kind", ""))
            if kind and kind.lower() != str(binding.get("kind", "")).lower():
                raise SnapshotDumpError(f"binding {name}: {where}.object is a {kind}, the binding watches "
                                        f"{binding.get('kind')}")
        if "filterResult" in item:
            result = item["filterResult"]
        elif obj is not None and binding.get("jqFilter"):
            result = bindings.apply_jq_filter(binding["jqFilter"], obj)
        elif binding.get("jqFilter"):
            raise SnapshotDumpError(f"binding {name}: {where} has neither 'filterResult' nor 'object'")
        else:
            result = None
        if binding.get("jqFilter"):
            _check_shape(binding, result, f"{where}.filterResult")
        replayed: dict[str, Any] = {}
        if obj is not None:
            replayed["object"] = obj
        if binding.get("jqFilter"):
            replayed["filterResult"] = result
        out.append(replayed)
    return out


def contexts_from_dump(config: dict, section: dict) -> list[dict]:
    """The binding contexts addon-operator gives the hook on these snapshots.

    Grouped bindings: one Group context per group (what every event of the group produces). A hook
    without groups: its schedule contexts (with their includeSnapshotsFrom), else its beforeHelm one."""
    kube = {b["name"]: b for b in bindings.kube_bindings(config)}

    def snaps(names: list[str]) -> dict[str, list[dict]]:
        out = {}
        for name in names:
            if name not in section:
                raise SnapshotDumpError(f"binding {name}: missing from the snapshot dump (the hook needs "
                                        f"{', '.join(names)}; a binding is absent when addon-operator has no "
                                        "monitor for it, e.g. the hook is not the module's version)")
            out[name] = binding_snapshot(kube[name], section[name])
        return out

    groups: list[str] = []
    for binding in kube.values():
        if binding.get("group") and binding["group"] not in groups:
            groups.append(binding["group"])
    if groups:
        return [{"binding": group, "type": "Group",
                 "snapshots": snaps([n for n, b in kube.items() if b.get("group") == group])} for group in groups]
    if config.get("schedule"):
        return [{"binding": schedule["name"], "type": "Schedule",
                 "snapshots": snaps(list(schedule.get("includeSnapshotsFrom") or []))}
                for schedule in config["schedule"]]
    if "beforeHelm" in config:
        return [{"binding": "beforeHelm", "snapshots": snaps(list(kube))}]
    raise SnapshotDumpError("the hook has neither grouped bindings, schedules nor beforeHelm: nothing to replay")


# -- building a dump (tests, and anyone rehearsing with a simulated cluster) ------------------------

def build_dump(hook_configs: dict[str, dict], objects: list[dict], prefix: str = "registry/hooks/") -> dict:
    """The dump addon-operator would print for these objects: every kubernetes binding of every hook
    (filterResult only when keepFullObjectsInMemory is false, as shell-operator keeps it)."""
    dump: dict[str, dict] = {}
    for file_name, config in hook_configs.items():
        section = {}
        for binding in bindings.kube_bindings(config):
            items = bindings.snapshot(binding, objects)
            section[binding["name"]] = {"snapshot": items,
                                        "operations": {"sinceStart": len(items), "sinceLastExecution": 0}}
        dump[f"{prefix}{file_name}"] = section
    return dump


# -- values ----------------------------------------------------------------------------------------

def split_values(document: Any, path: str) -> tuple[dict, dict | None]:
    """(module values, global values or None) from `module values registry -o json` output, the bare
    module values object, or {"global": ..., "registry": ...}."""
    if document is None:
        return {}, None
    if not isinstance(document, dict):
        raise SnapshotDumpError(f"values file {path} must be an object, got {_type_name(document)}")
    if isinstance(document.get(MODULE), dict) and set(document) <= {MODULE, "global"}:
        globals_ = document.get("global")
        if globals_ is not None and not isinstance(globals_, dict):
            raise SnapshotDumpError(f"values file {path}: 'global' must be an object")
        return document[MODULE], globals_
    return document, None


def load_globals(path: str) -> dict:
    document = load_document(path, "global values file")
    if isinstance(document, dict) and set(document) == {"global"} and isinstance(document["global"], dict):
        document = document["global"]
    if not isinstance(document, dict):
        raise SnapshotDumpError(f"global values file {path} must be an object")
    return document


# -- the report -----------------------------------------------------------------------------------

def _scrub(data: Any, show_secrets: bool) -> Any:
    """Secret fields replaced by markers; the pull credential in hosts.toml text too."""
    if show_secrets:
        return data
    from .plan import redact_hosts

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and ("auth" in value or "Basic " in value):
            return redact_hosts(value)
        return value

    return walk(redact.redact(data))


def _results(snaps: dict, name: str) -> list:
    return [item.get("filterResult") for item in snaps.get(name) or [] if item.get("filterResult") is not None]


ELLIPSIS = "\u2026"


def _short(version: str) -> str:
    return version[:8] + ELLIPSIS if version and version not in ("unknown", "") else (version or "-")


def waiting_on(state: dict, snaps: dict) -> list[str]:
    """Which nodes, pods and versions the orchestrator's current stage depends on, from the snapshots."""
    lines = []
    containerd = (state.get("node_config") or {}).get("containerd") or {}
    expected = containerd.get("version", "")
    nodes = sorted(_results(snaps, "nodes"), key=lambda n: str(n.get("name")))
    if nodes:
        lines.append(f"Nodes (containerd config {containerd.get('kind', 'none')} {_short(expected)}):")
        lines.append(f"  {'NODE':<24} {'READY':<6} {'APPLIED':<10} STATE")
        for node in nodes:
            version = str(node.get("version") or "unknown")
            state_text = "NotReady" if not node.get("ready") else "custom config" \
                if node.get("containerdConfig") == "custom" else \
                "waiting" if expected and version != expected else "ok"
            lines.append(f"  {str(node.get('name')):<24} {str(bool(node.get('ready'))):<6} {_short(version):<10} "
                         f"{state_text}")
    services = state.get("node_services") or {}
    pods = sorted(_results(snaps, "nodeservices_pods"), key=lambda p: str(p.get("node")))
    if services.get("run") or pods:
        wanted = services.get("nodes") or {}
        lines.append(f"Node services pods (run: {bool(services.get('run'))}):")
        for pod in pods:
            node = str(pod.get("node"))
            want = (wanted.get(node) or {}).get("version", "") if isinstance(wanted.get(node), dict) else ""
            mark = "" if not want else " ok" if pod.get("configVersion") == want else f" waiting for {_short(want)}"
            lines.append(f"  {node:<24} ready={bool(pod.get('ready'))} config={_short(str(pod.get('configVersion')))}"
                         f"{mark}")
        for node in sorted(set(wanted) - {str(p.get("node")) for p in pods}):
            lines.append(f"  {node:<24} no pod yet")
    for proxy in _results(snaps, "incluster_proxy"):
        lines.append(f"In-cluster proxy: version {_short(str(proxy.get('version')))}, "
                     f"{proxy.get('ready')}/{proxy.get('replicas')} ready, {proxy.get('updated')} updated, "
                     f"generation {proxy.get('observedGeneration')}/{proxy.get('generation')} observed")
    for pod in _results(snaps, "deckhouse_pods"):
        lines.append(f"Deckhouse pod {pod.get('name')}: ready={bool(pod.get('ready'))}, "
                     f"registry checksum {_short(str(pod.get('registryVersion')))}")
    for ngc in sorted(_results(snaps, "node_group_configurations"), key=lambda n: str(n.get("name"))):
        lines.append(f"NodeGroupConfiguration {ngc.get('name')}: version {_short(str(ngc.get('version')))}")
    return lines


_SECRET_LINE = re.compile(r"^(\s*[\"']?(?:password|passwd|secret|license|auth|token)[\"']?\s*[:=]\s*).+$",
                          re.MULTILINE | re.IGNORECASE)


def _hide_in_text(key: str, text: str) -> str:
    """Secret material inside one decoded Secret value: JSON documents by key, other text by line."""
    if key in redact.SECRET_KEYS or key.endswith(".key") or "PRIVATE KEY" in text:
        return redact.marker(text)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        return json.dumps(_scrub(parsed, False), sort_keys=True)
    return _SECRET_LINE.sub(lambda m: m.group(1) + "****", text)


def _readable(obj: dict | None, show_secrets: bool) -> Any:
    """An object as the diff shows it: Secret data decoded, secret keys and lines hidden unless asked."""
    if obj is None:
        return None
    if obj.get("kind") == "Secret" and isinstance(obj.get("data"), dict):
        obj = dict(obj)
        decoded = {}
        for key, raw in obj.pop("data").items():
            try:
                text = base64.b64decode(str(raw)).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                text = f"<{len(str(raw))} base64 characters>"
            if not show_secrets:
                text = _hide_in_text(key, text)
            decoded[key] = text
        obj["data (decoded)"] = decoded
        return _scrub(obj, show_secrets) if not show_secrets else obj
    return _scrub(obj, show_secrets)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so a diff shows the changed line, not a wall of escapes."""


_BlockDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def _yaml_lines(obj: Any) -> list[str]:
    return yaml.dump(obj, Dumper=_BlockDumper, sort_keys=True, width=200).splitlines()


def _object_key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def render_diff(before: list[dict] | None, after: list[dict], show_secrets: bool) -> tuple[list[dict], list[str]]:
    """Object changes between two renders (before None: every object is listed as rendered)."""
    old = {_object_key(o): o for o in before or []}
    new = {_object_key(o): o for o in after}
    changes, lines = [], []
    for key in sorted(set(old) | set(new)):
        kind, namespace, name = key
        where = f"{namespace}/{name}" if namespace else name
        if before is None:
            changes.append({"action": "render", "kind": kind, "name": where})
            lines.append(f"  render {kind} {where}")
            continue
        if key not in old:
            action = "create"
        elif key not in new:
            action = "delete"
        elif old[key] != new[key]:
            action = "update"
        else:
            continue
        changes.append({"action": action, "kind": kind, "name": where})
        lines.append(f"  {action} {kind} {where}")
        a = _yaml_lines(_readable(old.get(key), show_secrets)) if key in old else []
        b = _yaml_lines(_readable(new.get(key), show_secrets)) if key in new else []
        diff = list(difflib.unified_diff(a, b, "current", "next", lineterm="", n=2))
        if diff and action == "update":
            lines += ["    " + line for line in diff[2:]]
    return changes, lines


def _render(module_dir: Path, harness: ModuleHarness, module_values: dict) -> tuple[list[dict] | None, str]:
    saved = harness.module_values
    harness.module_values = module_values
    try:
        return helm.render(module_dir, harness.helm_values()), ""
    except (values_rules.ValuesValidationError, helm.HelmError) as exc:
        return None, _one_line(exc)[:300]
    finally:
        harness.module_values = saved


def _verdict(module_values: dict) -> dict:
    orchestrator = (module_values.get("internal") or {}).get("orchestrator") or {}
    state = orchestrator.get("state") or {}
    errors = list((orchestrator.get("input") or {}).get("errors") or [])
    target = (state.get("params") or {}).get("target") or {}
    conditions = {c.get("type"): c for c in state.get("conditions") or []}
    refused = conditions.get("ErrTransitionNotSupported", {}).get("status") == "True"
    return {"valid": not errors, "errors": errors, "refusedTransition": refused,
            "target": {k: target.get(k) for k in ("mode", "legacy", "scheme", "host", "path", "checkMode")
                       if k in target}}


def _stage(state: dict) -> dict | None:
    """The first switch condition that is not True: the stage the switch waits in."""
    for condition in state.get("conditions") or []:
        if condition.get("type") not in ("Ready", "ErrTransitionNotSupported") and condition.get("status") != "True":
            return condition
    return None


def replay(module_dir: Path, cluster, args, out) -> int:
    """`d8registry hook <name> --snapshots dump.json [--values values.json]`."""
    harness = ModuleHarness(module_dir, [], cluster.globals)
    hook = harness.hook(_hook_stem(args.name))
    config = harness.config(hook)
    dump = load_document(args.snapshots, "snapshot dump")
    dump_name, section = hook_section(dump, hook.name, [b["name"] for b in bindings.kube_bindings(config)])
    contexts = contexts_from_dump(config, section)
    unknown = sorted(set(section) - {b["name"] for b in bindings.kube_bindings(config)})
    values_in: dict = {}
    if args.values:
        values_in, globals_in = split_values(load_document(args.values, "values file"), args.values)
        if globals_in is not None:
            harness.global_values = copy.deepcopy(globals_in)
    if getattr(args, "globals", None):
        harness.global_values = load_globals(args.globals)
    try:
        harness.module_values = values_rules.validate_module_values(harness.openapi_dir, values_in)
    except values_rules.ValuesValidationError as exc:
        raise SnapshotDumpError(f"values file {args.values}: {_one_line(exc)[:300]}") from None
    before_values = copy.deepcopy(harness.module_values)
    result = harness.execute(hook, contexts)
    patched = values_rules.apply_patch(harness.values, result.values_patch)
    after_values = values_rules.validate_module_values(harness.openapi_dir, patched.get(MODULE, {}))
    state = ((after_values.get("internal") or {}).get("orchestrator") or {}).get("state") or {}
    snaps = {k: v for c in contexts for k, v in (c.get("snapshots") or {}).items()}

    before_render, before_error = _render(module_dir, harness, before_values) if args.values else (None, "")
    after_render, after_error = _render(module_dir, harness, after_values)
    changes, diff_lines = render_diff(before_render, after_render or [], args.show_secrets) \
        if after_render is not None else ([], [])

    show = args.show_secrets
    report = {
        "hook": hook.name, "dumpName": dump_name,
        "contexts": [{"binding": c["binding"], "type": c.get("type", c["binding"]),
                      "snapshots": {k: len(v) for k, v in c["snapshots"].items()}} for c in contexts],
        "valuesPatch": _scrub(result.values_patch, show),
        "kubernetesOperations": _scrub(result.kube_operations, show),
        "logs": _scrub(result.logs, show),
        "nextRender": {"changes": changes, "error": after_error or None,
                       "comparedWith": "values file" if before_render is not None else None},
    }
    if state:
        stage = _stage(state)
        report.update({"verdict": _scrub(_verdict(after_values), show), "mode": state.get("mode"),
                       "targetMode": state.get("target_mode"),
                       "ready": bool(after_values["internal"]["orchestrator"].get("ready")),
                       "stage": _scrub(stage, show), "conditions": _scrub(state.get("conditions"), show)})
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True), file=out)
        return 0

    p = lambda *parts: print(*parts, file=out)  # noqa: E731
    p(f"Hook: {hook.name} (\"{dump_name}\" in the dump); binding context: "
      + ", ".join(f"{c['type']} {c['binding']}" for c in report["contexts"]))
    p("Snapshots: " + ", ".join(f"{k} {n}" for c in report["contexts"] for k, n in c["snapshots"].items()))
    if unknown:
        p(f"Ignored (not bindings of this hook): {', '.join(unknown)}")
    if not args.values:
        p("Values: none given, so the hook starts as after a Deckhouse restart (state restored from its Secrets)")
    if state:
        verdict = report["verdict"]
        if not verdict["valid"]:
            p("Settings: INVALID (InvalidConfiguration); the switch does not start:")
            for error in verdict["errors"]:
                p(f"  - {error}")
        elif verdict["refusedTransition"]:
            p("Settings: valid, but the transition is not supported (ErrTransitionNotSupported)")
        else:
            target = verdict["target"]
            where = f" {target.get('host', '')}/{target.get('path', '')}" if target.get("host") else ""
            p(f"Settings: valid: {target.get('mode')}{' (non-configurable)' if target.get('legacy') else ''}{where}")
        phase = "ready" if report["ready"] else "switching"
        p(f"Mode: {state.get('mode')} -> {state.get('target_mode')} ({phase})")
        stage = report["stage"]
        if stage:
            message = (stage.get("message") or "").splitlines() or [""]
            p(f"Waiting in: {stage.get('type')} ({stage.get('reason') or 'no reason'}): {message[0]}")
            for extra in message[1:]:
                p(f"  {extra}")
        elif not report["ready"]:
            ready = next((c for c in state.get("conditions") or [] if c.get("type") == "Ready"), {})
            p(f"Waiting: {ready.get('reason', '')}: {ready.get('message', '')}")
        for line in waiting_on(state, snaps):
            p(line)
    checker = (after_values.get("internal") or {}).get("checker") or {}
    if hook.stem.startswith("checker") and checker:
        queues = (checker.get("state") or {}).get("queues") or {}
        p("Image checker:")
        for name, queue in sorted(queues.items()):
            total = queue.get("processed", 0) + len(queue.get("items") or []) + len(queue.get("retry") or [])
            p(f"  {name}: {queue.get('processed', 0)} of {total} checked, {len(queue.get('retry') or [])} with errors")
        if not queues:
            p("  " + ((checker.get("state") or {}).get("message") or "no queues").splitlines()[0])
    p(f"Values patch ({len(result.values_patch)} operations):")
    for op in report["valuesPatch"]:
        value = json.dumps(op.get("value"), sort_keys=True) if "value" in op else ""
        more = ELLIPSIS if len(value) > 160 else ""
        p(f"  {op.get('op')} {op.get('path')} {value[:160]}{more}".rstrip())
    p(f"Kubernetes operations ({len(result.kube_operations)}):")
    for op in report["kubernetesOperations"]:
        target = f"{op.get('kind')} {op.get('namespace') + '/' if op.get('namespace') else ''}{op.get('name')}"
        body = op.get("mergePatch", op.get("object"))
        p(f"  {op.get('operation')} {target} {json.dumps(body, sort_keys=True) if body is not None else ''}".rstrip())
    if after_render is None:
        p(f"Next render: cannot render with these values ({after_error})")
    elif before_render is None:
        note = f" (the values file does not render: {before_error})" if before_error else \
            " (no values file to compare with)"
        p(f"Next render{note}: {len(after_render)} objects")
        p("\n".join(diff_lines))
    elif not changes:
        p("Next render: no change")
    else:
        p(f"Next render: {len(changes)} objects change")
        p("\n".join(diff_lines))
    return 0
