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
"""Alike nodes for `plan`: nodes that play a switch identically, so one of them can stand for the rest.

Two nodes are alike when they differ only in who they are: their name, the `kubernetes.io/hostname`
label that repeats it, and their addresses. Everything else that decides how a node goes through a
switch must be equal:
- what each of the module's hooks sees of the Node: the result of every Node binding's own jqFilter,
  applied to the Node with its name and addresses blanked (so a filter that starts reading another
  field makes the nodes differ on it at once);
- all labels and annotations (node group, containerd config version, containerd-config label, ...),
  the spec (taints, unschedulable; the per-machine podCIDR(s) and providerID aside), the status of
  each condition and the kinds of addresses;
- and, through those, the node's starting files, its node groups and so the node steps it runs: the
  simulator derives them from the Node alone.
A node never joins a group when it is a control-plane node (static pods and peers carry their own
IPs), when its name is one the node steps refuse, when its blanked description still holds its own
name or an address, or when the name or an address appears in any other object or in the global
values (a per-node Secret, a Pod on it, ...). `plan` then checks the played switch: when the files a
group's representative got, or any object besides its own Node and mirror pods, name it or its
addresses, the groups involved are split into single nodes and the switch is played again.

Alike nodes start equal and see the same inputs every tick, so in a full simulation they move in
lockstep: same steps at the same tick, same files, same annotation changes. A group's representative
therefore passes every stage exactly when the whole group would, and the orchestrator's waits (every
node's applied version, every master's pods) end at the same tick with or without the rest.
"""

from __future__ import annotations

import base64
import functools
import json
import re

from .cluster import Cluster

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
HOSTNAME_LABEL = "kubernetes.io/hostname"
_VALID_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")   # the node steps' own rule
_PER_OBJECT_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink", "generation")
_PER_MACHINE_SPEC = ("podCIDR", "podCIDRs", "providerID")


_IPV4_RUN = re.compile(r"[0-9.]+")
_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]+")


class _Text:
    """A text to look for nodes in: a name anywhere (also inside a longer name, like a Secret named after
    the node), an address only as a whole (10.0.0.2 is in 10.0.0.2:5001, not in 10.0.0.20)."""

    def __init__(self, text: str):
        self.text = text
        self.runs = {run.strip(".") for pattern in (_IPV4_RUN, _IPV6_RUN) for run in pattern.findall(text)}

    def mentions(self, node: dict) -> bool:
        name, *addresses = identity(node)
        return bool(name and name in self.text) or any(a in self.runs for a in addresses)


@functools.lru_cache(maxsize=64)
def _text(text: str) -> _Text:
    """_Text for a text that repeats: alike nodes have one description, whose runs are found once."""
    return _Text(text)


def identity(node: dict) -> list[str]:
    """The strings that say which node this is: its name and every address it has."""
    meta = node.get("metadata") or {}
    addresses = [str(a.get("address")) for a in (node.get("status") or {}).get("addresses") or []
                 if isinstance(a, dict) and a.get("address")]
    return [str(meta.get("name", "")), *addresses]


def _blanked(node: dict) -> dict:
    """The Node as the module would see any node in its place: name, hostname label and addresses blanked."""
    name = node["metadata"]["name"]
    meta = {k: v for k, v in node["metadata"].items() if k not in _PER_OBJECT_METADATA}
    meta["name"] = "<node>"
    labels = dict(meta.get("labels") or {})
    if labels.get(HOSTNAME_LABEL) == name:
        labels[HOSTNAME_LABEL] = "<node>"
    meta["labels"] = labels
    status = dict(node.get("status") or {})
    status["addresses"] = [{**a, "address": f"<{a.get('type', '')}>"} if isinstance(a, dict) else a
                           for a in status.get("addresses") or []]
    return {**node, "metadata": meta, "status": status}


def _description(node: dict, node_filters: list[str]) -> str:
    from .operator import bindings

    blank = _blanked(node)
    spec = {k: v for k, v in (blank.get("spec") or {}).items() if k not in _PER_MACHINE_SPEC}
    status = blank["status"]
    return json.dumps({
        "module": [bindings.apply_jq_filter(f, blank) for f in node_filters],
        "labels": blank["metadata"].get("labels") or {},
        "annotations": blank["metadata"].get("annotations") or {},
        "spec": spec,
        "conditions": sorted((str(c.get("type")), str(c.get("status")))
                             for c in status.get("conditions") or [] if isinstance(c, dict)),
        "addresses": [a.get("type") if isinstance(a, dict) else a for a in status.get("addresses") or []],
    }, sort_keys=True, default=str)


def node_filters(module_dir) -> list[str]:
    """The jqFilter of every Node binding of the module's hooks (the configs the simulator asks for too)."""
    from .operator import bindings, protocol

    filters = []
    for config in protocol.hook_configs(protocol.discover_hooks(module_dir / "hooks")).values():
        for binding in bindings.kube_bindings(config):
            if str(binding.get("kind", "")).lower() == "node":
                filters.append(binding.get("jqFilter") or ".")
    return filters


def groups(cluster: Cluster, filters: list[str], single: set[str] = frozenset()) -> dict[str, list[str]]:
    """{representative: [the other nodes of its group]} for every group of two or more alike nodes;
    a node in `single` is played on its own."""
    nodes = [o for o in cluster.objects if o.get("kind") == "Node"]
    others = [o for o in cluster.objects if o.get("kind") != "Node"]
    candidates: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    for node in nodes:
        name = str(node["metadata"].get("name", ""))
        labels = node["metadata"].get("labels") or {}
        if name in single or CONTROL_PLANE_LABEL in labels or not (len(name) <= 253 and _VALID_NAME.fullmatch(name)):
            continue
        if not all(isinstance(part, dict) for part in (labels, node["metadata"].get("annotations") or {},
                                                        node.get("spec") or {}, node.get("status") or {})):
            continue   # an odd Node is played as it is; the simulator reports what is wrong with it
        description = _description(node, filters)
        if _text(description).mentions(node):
            continue
        descriptions[name] = description
        candidates.setdefault(description, []).append(name)
    # what the rest of the cluster says: a node named (or addressed) anywhere else is not interchangeable
    rest = [n for n in nodes if n["metadata"].get("name") not in descriptions]
    context = _Text(json.dumps([cluster.globals, others, rest, sorted(candidates)], sort_keys=True, default=str))
    by_name = {str(n["metadata"].get("name")): n for n in nodes}
    result: dict[str, list[str]] = {}
    for names in candidates.values():
        free = sorted(n for n in names if not context.mentions(by_name[n]))
        if len(free) > 1:
            result[free[0]] = free[1:]
    return result


def reduced(cluster: Cluster, alike: dict[str, list[str]]) -> Cluster:
    """The cluster with each group's representative standing for the group: the others' Nodes left out."""
    dropped = {name for members in alike.values() for name in members}
    objects = [o for o in cluster.objects
               if not (o.get("kind") == "Node" and o["metadata"].get("name") in dropped)]
    return Cluster(globals=cluster.globals, objects=objects, description=cluster.description)


def _decoded(value: str) -> str:
    """A Secret's data value as text (its base64 hides names from a plain search); undecodable: as is."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except ValueError:
        return value


def leaks(representative: dict, files: list[dict[str, str]], objects: list[list[dict]]) -> bool:
    """Whether the played switch gave the representative anything that names it: a file it got, or an
    object other than its own Node and the mirror pods its kubelet made."""
    name = representative["metadata"]["name"]
    texts = ["\0".join(f"{path}\0{text}" for path, text in snapshot.items()) for snapshot in files]
    for listing in objects:
        kept = [o for o in listing
                if not (o.get("kind") == "Node" and o["metadata"].get("name") == name)
                and not any(ref.get("kind") == "Node" and ref.get("name") == name
                            for ref in o["metadata"].get("ownerReferences") or [])]
        texts.append(json.dumps(kept, sort_keys=True, default=str))
        texts += [_decoded(value) for o in kept if o.get("kind") == "Secret"
                  for value in (o.get("data") or {}).values() if isinstance(value, str)]
    return any(_Text(text).mentions(representative) for text in texts)
