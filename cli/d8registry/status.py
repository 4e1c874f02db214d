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
"""'status': the switch as a user sees it — conditions, per-node convergence, checker progress.

Reads the same objects as the documented commands (Secret registry-state, Nodes, the containerd
NodeGroupConfiguration, Secret registry-checker-state) from a dump or live through kubectl. Never
prints Secret data other than the secret-free registry-state and the checker summary.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import yaml

from .cluster import ClusterError
from .cluster import load as load_cluster


class StatusError(ValueError):
    pass


def _find(objects: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name), None)


def _decoded(secret: dict | None, key: str) -> str:
    raw = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw else ""


def _age(stamp: str, now: datetime) -> str:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return "-"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render_status(objects: list[dict], verbose: bool = False, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    state_secret = _find(objects, "Secret", "registry-state")
    if state_secret is None:
        raise StatusError("Secret d8-system/registry-state not found: the module has not run yet")
    mode, target = _decoded(state_secret, "mode"), _decoded(state_secret, "target_mode")
    summary = json.loads(_decoded(state_secret, "state") or "{}")
    conditions = yaml.safe_load(_decoded(state_secret, "conditions") or "[]") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    phase = "ready" if ready.get("status") == "True" else \
        "invalid input" if ready.get("reason") == "InvalidConfiguration" else "switching"
    legacy = " (non-configurable)" if summary.get("target_legacy") else ""
    lines = [f"Mode: {mode} \u2192 {target}{legacy} ({phase})", "",
             f"{'TYPE':<32} {'STATUS':<6} {'REASON':<22} {'AGE':<5} MESSAGE"]
    for condition in conditions:
        message = (condition.get("message") or "").splitlines() or [""]
        lines.append(f"{condition.get('type', ''):<32} {condition.get('status', ''):<6} "
                     f"{condition.get('reason', ''):<22} {_age(condition.get('lastTransitionTime', ''), now):<5} "
                     f"{message[0]}")
        if verbose:
            lines += [f"{'':<69} {extra}" for extra in message[1:]]
    ngc = _find(objects, "NodeGroupConfiguration", "d8-registry-containerd.sh") or {"metadata": {}}
    expected = (ngc["metadata"].get("annotations") or {}).get("registry.deckhouse.io/config-version", "")
    lines += ["", f"{'NODE':<24} {'APPLIED':<10} {'EXPECTED':<10} STATE"]
    for node in sorted((o for o in objects if o.get("kind") == "Node"), key=lambda n: n["metadata"]["name"]):
        meta = node["metadata"]
        applied = (meta.get("annotations") or {}).get("registry.deckhouse.io/version", "unknown")
        label = (meta.get("labels") or {}).get("node.deckhouse.io/containerd-config-registry", "")
        node_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in (node.get("status") or {}).get("conditions") or [])
        state = "NotReady" if not node_ready else "custom" if label == "custom" else \
            "waiting" if expected and applied != expected else "ok"
        short = lambda v: v[:8] + "\u2026" if v and v != "unknown" else (v or "-")  # noqa: E731
        lines.append(f"{meta['name']:<24} {short(applied):<10} {short(expected):<10} {state}")
    checker = _find(objects, "Secret", "registry-checker-state")
    if checker is not None:
        checker_state = json.loads(_decoded(checker, "state") or "{}")
        lines += ["", "Image checker:"]
        for name, queue in sorted((checker_state.get("queues") or {}).items()):
            total = queue.get("processed", 0) + len(queue.get("items") or []) + len(queue.get("retry") or [])
            lines.append(f"  {name}: {queue.get('processed', 0)} of {total} checked, "
                         f"{len(queue.get('retry') or [])} with errors")
        if not checker_state.get("queues"):
            lines.append("  " + (checker_state.get("message") or "no registries to check").splitlines()[0])
    return lines


def status(args, out) -> int:
    if args.live:
        from .live import read_cluster

        objects = read_cluster(args, with_globals=False).objects
    elif args.dump:
        try:
            objects = load_cluster(Path(args.dump)).objects
        except ClusterError as exc:
            raise StatusError(str(exc)) from exc
    else:
        raise StatusError("status needs --dump <file> or --live")
    print("\n".join(render_status(objects, args.verbose)), file=out)
    return 0
