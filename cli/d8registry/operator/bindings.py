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
"""Snapshots and binding contexts built the way shell-operator and addon-operator build them.

Objects are selected by each binding's own selectors, and each binding's own jqFilter is applied
with the jq library (no result -> null, one result -> that value, several -> a list), so a test or
the simulator feeds a hook exactly what it would receive in a cluster.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import jq

from .memo import clone


@lru_cache(maxsize=256)
def _compiled(expression: str):
    return jq.compile(expression)


# jq builtins whose result depends on more than the filter and its input (time, environment, other input)
_IMPURE_JQ = re.compile(r"\b(now|env|input|inputs|input_filename|debug|stderr|halt|halt_error|input_line_number)\b"
                        r"|\$ENV|\$__loc__")
_RESULTS: OrderedDict[tuple[str, str], Any] = OrderedDict()
_RESULTS_MAX = 8192


def _run_jq(expression: str, text: str) -> Any:
    results = _compiled(expression).input_text(text).all()
    if not results:
        return None
    if len(results) == 1:
        return results[0]
    return results


def apply_jq_filter(expression: str | None, obj: dict) -> Any:
    """The filter's result for obj as shell-operator reports it. A pure filter run on the same JSON text
    gives the same result, so each (filter, object content) pair runs jq once; the caller gets a copy."""
    if not expression:
        return None
    text = json.dumps(obj)
    if _IMPURE_JQ.search(expression):
        return _run_jq(expression, text)
    key = (expression, text)
    if key in _RESULTS:
        _RESULTS.move_to_end(key)
    else:
        _RESULTS[key] = _run_jq(expression, text)
        if len(_RESULTS) > _RESULTS_MAX:
            _RESULTS.popitem(last=False)
    return clone(_RESULTS[key])


def _field(obj: dict, dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _labels_match(labels: dict, selector: dict | None) -> bool:
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr["key"], expr["operator"], expr.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _fields_match(obj: dict, selector: dict | None) -> bool:
    if not selector:
        return True
    for expr in selector.get("matchExpressions") or []:
        actual = _field(obj, expr["field"])
        actual = "" if actual is None else str(actual)
        operator = expr.get("operator", "Equals")
        if operator in ("=", "==", "Equals") and actual != expr.get("value"):
            return False
        if operator in ("!=", "NotEquals") and actual == expr.get("value"):
            return False
    return True


def _api_version_matches(binding: dict, obj: dict) -> bool:
    wanted = binding.get("apiVersion")
    if not wanted:
        return True
    return obj.get("apiVersion") == wanted


def binding_selects(binding: dict, obj: dict) -> bool:
    """True when the kubernetes binding would watch this object."""
    if obj.get("kind", "").lower() != str(binding.get("kind", "")).lower():
        return False
    if not _api_version_matches(binding, obj):
        return False
    meta = obj.get("metadata") or {}
    names = (binding.get("nameSelector") or {}).get("matchNames")
    if names is not None and meta.get("name") not in names:
        return False
    namespace = binding.get("namespace") or {}
    ns_names = (namespace.get("nameSelector") or {}).get("matchNames")
    if ns_names is not None and meta.get("namespace") not in ns_names:
        return False
    if not _labels_match(meta.get("labels") or {}, binding.get("labelSelector")):
        return False
    return _fields_match(obj, binding.get("fieldSelector"))


def snapshot_item(binding: dict, obj: dict) -> dict:
    item: dict[str, Any] = {}
    if binding.get("keepFullObjectsInMemory", True) is not False or not binding.get("jqFilter"):
        item["object"] = obj
    if binding.get("jqFilter"):
        item["filterResult"] = apply_jq_filter(binding["jqFilter"], obj)
    return item


def _sort_key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def snapshot(binding: dict, objects: Iterable[dict]) -> list[dict]:
    selected = sorted((o for o in objects if binding_selects(binding, o)), key=_sort_key)
    return [snapshot_item(binding, o) for o in selected]


def kube_bindings(config: dict) -> list[dict]:
    return list(config.get("kubernetes") or [])


def _binding(config: dict, name: str) -> dict:
    for binding in kube_bindings(config):
        if binding.get("name") == name:
            return binding
    raise KeyError(f"hook has no kubernetes binding named {name!r}")


def snapshots_for(config: dict, names: Iterable[str], objects: list[dict]) -> dict[str, list[dict]]:
    return {name: snapshot(_binding(config, name), objects) for name in names}


def _group_members(config: dict, group: str) -> list[str]:
    return [b["name"] for b in kube_bindings(config) if b.get("group") == group]


def group_context(config: dict, group: str, objects: list[dict]) -> dict:
    return {
        "binding": group,
        "type": "Group",
        "snapshots": snapshots_for(config, _group_members(config, group), objects),
    }


def synchronization_contexts(config: dict, objects: list[dict]) -> list[dict]:
    """Contexts a hook receives when its informers start; grouped bindings are compacted into one Group."""
    contexts: list[dict] = []
    seen_groups: set[str] = set()
    for binding in kube_bindings(config):
        if binding.get("executeHookOnSynchronization") is False:
            continue
        group = binding.get("group")
        if group:
            if group not in seen_groups:
                seen_groups.add(group)
                contexts.append(group_context(config, group, objects))
            continue
        context = {
            "binding": binding["name"],
            "type": "Synchronization",
            "objects": snapshot(binding, objects),
            "snapshots": snapshots_for(config, binding.get("includeSnapshotsFrom") or [], objects),
        }
        contexts.append(context)
    return contexts


def event_context(config: dict, binding_name: str, watch_event: str, obj: dict, objects: list[dict]) -> dict | None:
    """Context for one watch event, or None when the binding does not execute on this event."""
    binding = _binding(config, binding_name)
    allowed = binding.get("executeHookOnEvent")
    if allowed is None:
        allowed = ["Added", "Modified", "Deleted"]
    if watch_event not in allowed or not binding_selects(binding, obj):
        return None
    group = binding.get("group")
    if group:
        return group_context(config, group, objects)
    item = snapshot_item(binding, obj)
    return {
        "binding": binding_name,
        "type": "Event",
        "watchEvent": watch_event,
        **item,
        "snapshots": snapshots_for(config, binding.get("includeSnapshotsFrom") or [], objects),
    }


def schedule_context(config: dict, schedule_name: str, objects: list[dict]) -> dict:
    for schedule in config.get("schedule") or []:
        if schedule.get("name") == schedule_name:
            group = schedule.get("group")
            if group:
                return group_context(config, group, objects)
            return {
                "binding": schedule_name,
                "type": "Schedule",
                "snapshots": snapshots_for(config, schedule.get("includeSnapshotsFrom") or [], objects),
            }
    raise KeyError(f"hook has no schedule named {schedule_name!r}")


def helm_phase_context(config: dict, phase: str, objects: list[dict]) -> dict:
    """beforeHelm/afterHelm contexts carry the snapshots of every kubernetes binding of the hook."""
    names = [b["name"] for b in kube_bindings(config)]
    return {"binding": phase, "snapshots": snapshots_for(config, names, objects)}


def dumps(contexts: list[dict]) -> str:
    return json.dumps(contexts)
