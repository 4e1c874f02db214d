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
"""Human-readable output of a simulation: timeline lines, per-node versions, conditions."""

from __future__ import annotations

import sys

from .engine import Simulator, TimelineEntry


def short(version: str) -> str:
    return version[:8] + "\u2026" if version and version != "unknown" else (version or "-")


def timeline_line(entry: TimelineEntry) -> str:
    return f"  tick {entry.tick:>3}  {entry.time}  {entry.kind:<10} {entry.text}"


def live_printer(stream=None):
    stream = stream or sys.stdout

    def emit(entry: TimelineEntry) -> None:
        print(timeline_line(entry), file=stream, flush=True)

    return emit


def node_table(sim: Simulator) -> list[str]:
    state = sim.state()
    expected = state.get("node_config", {}).get("containerd", {}).get("version", "")
    lines = [f"  {'NODE':<12} {'APPLIED':<10} {'EXPECTED':<10} STATE"]
    for node in sorted(sim.store.list("Node"), key=lambda n: n["metadata"]["name"]):
        meta = node["metadata"]
        applied = (meta.get("annotations") or {}).get("registry.deckhouse.io/version", "unknown")
        label = (meta.get("labels") or {}).get("node.deckhouse.io/containerd-config-registry", "")
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or [])
        if not ready:
            status = "NotReady"
        elif label == "custom":
            status = "custom"
        elif expected and applied != expected:
            status = "waiting"
        else:
            status = "ok"
        lines.append(f"  {meta['name']:<12} {short(applied):<10} {short(expected):<10} {status}")
    return lines


def conditions_table(state: dict, verbose: bool = False) -> list[str]:
    lines = [f"  {'TYPE':<32} {'STATUS':<6} {'REASON':<22} MESSAGE"]
    for condition in state.get("conditions", []):
        message = (condition.get("message") or "").splitlines() or [""]
        lines.append(f"  {condition['type']:<32} {condition['status']:<6} {condition.get('reason', ''):<22} {message[0]}")
        if verbose:
            lines += [f"  {'':<62} {extra}" for extra in message[1:]]
    return lines
