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
"""Every object the chart renders, in every mode and at every stage of a switch, is accepted by a real API
server as rendered: `kubectl apply --dry-run=server`, then a real apply into a fresh namespace, then what the
server stored must contain every rendered field with the rendered value (nothing pruned, nothing rewritten).

The renders are the ones the simulator produces while it drives the real hooks through the default
sequence of switches (SPEC 4.3) and back to the non-configurable Unmanaged mode.
"""

from __future__ import annotations

import json
from argparse import Namespace
from collections import defaultdict

import pytest
from d8registry import cluster as cluster_mod
from d8registry import helm
from d8registry.sim import scenario
from d8registry.sim.engine import Simulator
from d8registry.sim.run import _hosts, cluster_registry, run_step

SEQUENCE = [*scenario.DEFAULT_SEQUENCE, "mode=Legacy"]
STEPS = [f"{index}:{expression}" for index, expression in enumerate(SEQUENCE, 1)]
CLUSTER_SCOPED = {"NodeGroupConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                  "ClusterRole", "ClusterRoleBinding"}


@pytest.fixture(scope="module")
def renders(repo_root, helm_bin) -> dict[str, list[list[dict]]]:
    """Step label -> every distinct render of the chart while that switch ran (first: the starting state)."""
    cluster = cluster_mod.load()
    steps = [(label, scenario.settings_from_set(expression, cluster)) for label, expression in zip(STEPS, SEQUENCE,
                                                                                                  strict=True)]
    recorded: list[list[dict]] = []
    original = helm.render

    def recording(*args, **kwargs):
        objects = original(*args, **kwargs)
        recorded.append(json.loads(json.dumps(objects)))
        return objects

    sim = Simulator(repo_root, cluster, in_process=True,
                    registry_hosts=_hosts([registry for _label, registry in steps] + [cluster_registry(cluster)]))
    args = Namespace(max_ticks=300, no_push=False, push_after=3)
    result: dict[str, list[list[dict]]] = {}
    helm.render = recording
    try:
        for label, registry in steps:
            start = len(recorded)
            target = (registry or {}).get("mode", "Unmanaged") if registry is not None else "Unmanaged (non-configurable)"
            outcome = run_step(sim, label, registry, target, args)
            assert outcome.outcome == "ready", f"{label}: the simulated switch ended {outcome.outcome}"
            distinct, seen = [], set()
            for render in recorded[max(start - 1, 0):]:
                blob = json.dumps(render, sort_keys=True)
                if blob not in seen:
                    seen.add(blob)
                    distinct.append(render)
            result[label] = distinct
    finally:
        helm.render = original
        sim.close()
    return result


def key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def layers(renders: list[list[dict]]) -> list[list[dict]]:
    """Distinct versions of each object, spread so that no layer holds two versions of one object."""
    versions: dict[tuple, list[dict]] = defaultdict(list)
    seen: set[str] = set()
    for render in renders:
        for obj in render:
            blob = json.dumps(obj, sort_keys=True)
            if blob not in seen:
                seen.add(blob)
                versions[key(obj)].append(obj)
    depth = max(len(found) for found in versions.values())
    return [[found[i] for found in versions.values() if len(found) > i] for i in range(depth)]


def differences(rendered, stored, path: str = "") -> list[str]:
    """Where the stored object lost or changed a rendered field (server defaults may add fields)."""
    if isinstance(rendered, dict):
        if not isinstance(stored, dict):
            return [f"{path}: stored {stored!r}"]
        found = []
        for name, value in rendered.items():
            if name not in stored:
                found.append(f"{path}.{name}: pruned")
            else:
                found += differences(value, stored[name], f"{path}.{name}")
        return found
    if isinstance(rendered, list):
        if not isinstance(stored, list) or len(stored) != len(rendered):
            return [f"{path}: stored {stored!r}"]
        return [d for i, (a, b) in enumerate(zip(rendered, stored, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if rendered == stored else [f"{path}: rendered {rendered!r}, stored {stored!r}"]


def test_every_step_renders_the_objects_of_its_mode(renders):
    """Guard for the test below: the sequence really reaches each mode's data plane."""
    kinds = {obj["kind"] for step in renders.values() for render in step for obj in render}
    assert {"Deployment", "NodeGroupConfiguration", "ValidatingAdmissionPolicy", "Secret", "Service"} <= kinds
    names = {obj["metadata"]["name"] for step in renders.values() for render in step for obj in render}
    assert "registry-incluster-proxy" in names
    assert any(name.startswith("registry-node-config-") for name in names)


@pytest.mark.parametrize("step", STEPS)
def test_rendered_objects_are_accepted_unchanged(apiserver, renders, step):
    for layer in layers(renders[step]):
        namespace = apiserver.fresh_namespace("render")
        objects = []
        for obj in layer:
            obj = json.loads(json.dumps(obj))
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            objects.append(obj)
        apiserver.apply(objects, "--server-side", "--force-conflicts", "--dry-run=server")
        apiserver.apply(objects, "--server-side", "--force-conflicts")
        stored = apiserver.get_all(objects)
        problems = [f"{obj['kind']}/{obj['metadata']['name']}{d}" for obj in objects
                    for d in differences(obj, stored.get(key(obj)))]
        assert not problems, "\n".join(problems)


def test_the_check_fails_on_unknown_fields_and_rewritten_values(apiserver):
    """The check above can fail: server-side apply refuses a field the schema does not declare (a plain
    apply would prune it silently), and a rewritten value shows up in the comparison."""
    namespace = apiserver.fresh_namespace("render")
    ngc = {"apiVersion": "deckhouse.io/v1alpha1", "kind": "NodeGroupConfiguration",
           "metadata": {"name": "d8-registry-selfcheck.sh"},
           "spec": {"content": "true", "weight": 1, "nodeGroups": ["*"], "bundles": ["*"], "unknownField": "x"}}
    refused = apiserver.apply([ngc], "--server-side", "--dry-run=server", check=False)
    assert refused.returncode != 0 and ".spec.unknownField: field not declared in schema" in refused.stderr
    limits = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "selfcheck", "namespace": namespace},
              "spec": {"limits": [{"type": "Container", "default": {"cpu": "0.5"}}]}}
    apiserver.apply([limits], "--server-side", "--force-conflicts")
    stored = apiserver.get_all([limits])
    assert differences(limits, stored[key(limits)]) == [".spec.limits[0].default.cpu: rendered '0.5', stored '500m'"]
