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
server as rendered: a server-side `kubectl apply` into a fresh namespace, and what the server stored must
contain every rendered field with the rendered value (nothing pruned, nothing rewritten).

The renders are the ones `d8registry simulate --in-process` produces while it drives the real hooks through a
chain of switches that reaches every mode (SPEC 4.3) and ends in the non-configurable Unmanaged mode. That
one play also gives the CLI's timeline test its output: a chain costs a minute of CPU, so the suite plays it
once (issue #15) and the timeline test lives here, in the API server's xdist group, beside the renders.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass

import pytest
from d8registry import __main__ as cli
from d8registry import helm
from d8registry.sim import run

from .conftest import KubectlError

# Local is entered twice so that both ways out of it (to Direct and to Unmanaged) are played and rendered.
CHAIN = ["mode=Direct", "mode=Proxy", "mode=Direct", "mode=Local", "mode=Direct", "mode=Local", "mode=Unmanaged",
         "mode=Legacy"]
TARGETS = ["Direct", "Proxy", "Direct", "Local", "Direct", "Local", "Unmanaged", "Unmanaged (non-configurable)"]
STEPS = [f"{index}:{expression}" for index, expression in enumerate(CHAIN, 1)]
CLUSTER_SCOPED = {"NodeGroupConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                  "ClusterRole", "ClusterRoleBinding"}
LICENSE = "example-license-not-a-secret"  # the example cluster's dummy credential


@dataclass(frozen=True)
class Play:
    code: int                           # the exit code main() returned
    stdout: str                         # everything written to stdout, by Python or by a child process
    stderr: str
    renders: dict[str, list[list[dict]]]  # step label -> every distinct render while that switch ran


@contextlib.contextmanager
def _captured(into: dict[str, str]):
    """stdout and stderr of this process, at the Python and the file-descriptor level (so a child process's
    output is caught too, as when the CLI runs as its own process); their text lands in `into` at the end."""
    with (tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
          tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err):
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield
        finally:
            out.flush()
            err.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            out.seek(0)
            err.seek(0)
            into["stdout"], into["stderr"] = out.read(), err.read()


@pytest.fixture(scope="module")
def play(helm_bin) -> Play:
    """`d8registry simulate --in-process --set <each step of CHAIN>` through the CLI's own entry point (what
    `python -m d8registry` calls), recording every render of the chart and where each switch began."""
    recorded: list[list[dict]] = []
    starts: list[int] = []
    render, run_step = helm.render, run.run_step

    def recording_render(*args, **kwargs):
        objects = render(*args, **kwargs)
        recorded.append(json.loads(json.dumps(objects)))
        return objects

    def marking_run_step(*args, **kwargs):
        starts.append(len(recorded))
        return run_step(*args, **kwargs)

    argv = ["simulate", "--in-process"]
    for expression in CHAIN:
        argv += ["--set", expression]
    helm.render, run.run_step = recording_render, marking_run_step
    output: dict[str, str] = {}
    try:
        with _captured(output):
            code = cli.main(argv)
    finally:
        helm.render, run.run_step = render, run_step
    renders: dict[str, list[list[dict]]] = {}
    for label, start, end in zip(STEPS, starts, [*starts[1:], len(recorded)], strict=False):
        distinct, seen = [], set()
        for objects in recorded[max(start - 1, 0):end]:   # from the state the switch started in
            blob = json.dumps(objects, sort_keys=True)
            if blob not in seen:
                seen.add(blob)
                distinct.append(objects)
        renders[label] = distinct
    return Play(code, output["stdout"], output["stderr"], renders)


@pytest.fixture(scope="module")
def renders(play) -> dict[str, list[list[dict]]]:
    """Step label -> every distinct render of the chart while that switch ran (first: the starting state)."""
    assert play.code == 0, play.stdout[-3000:] + play.stderr[-3000:]
    outcomes = re.findall(r"^--- (\S+) after ", play.stdout, re.MULTILINE)
    assert outcomes == ["READY"] * len(CHAIN), f"every simulated switch ends ready: {outcomes}"
    assert list(play.renders) == STEPS
    return play.renders


def test_chained_scenario_prints_a_timeline(play):
    """The CLI's text report of a chain of switches (was tests/cli/test_main_job.py; the same play as the
    renders above): a header, the condition timeline and the per-node table for every switch."""
    assert play.code == 0, play.stdout[-3000:] + play.stderr[-3000:]
    assert play.stdout.count("--- READY after") == len(CHAIN)
    headers = re.findall(r"^=== (.+): switch to (.+)$", play.stdout, re.MULTILINE)
    assert headers == list(zip(CHAIN, TARGETS, strict=True))
    for target in ("Direct", "Proxy", "Local", "Unmanaged"):
        assert f"switch to {target}" in play.stdout
    assert "condition  FinalContainerdConfigReady=True" in play.stdout
    assert "d8 mirror push fills the Local replicas" in play.stdout
    assert LICENSE not in play.stdout + play.stderr, "user credentials are redacted"
    # the per-node table after each switch
    assert play.stdout.count("NODE         APPLIED") == len(CHAIN)


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


def stored_problems(apiserver, layered: list[list[dict]]) -> list[str]:
    """Apply the layers in order, each into a fresh namespace, in one server-side `kubectl apply` (the fresh
    namespaces first); every difference between a rendered object and what the server stored for it.

    The answer to each object's own write is what the server stored (kubectl prints it with -o json), so a
    cluster-scoped object that a later layer applies again is still compared as its earlier layer had it.
    There is no `--dry-run=server` before the write: a dry run passes the same admission, validation and
    defaulting as the write and only skips storing, so whatever it would refuse the write refuses too.
    """
    namespaces, objects = [], []
    for layer in layered:
        namespace = f"render-{uuid.uuid4().hex[:10]}"
        namespaces.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for obj in layer:
            obj = json.loads(json.dumps(obj))
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            objects.append(obj)
    stored = apiserver.apply_stored(namespaces + objects, "--server-side", "--force-conflicts")[len(namespaces):]
    problems = []
    for obj, answer in zip(objects, stored, strict=True):
        if key(answer) != key(obj):
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: answered for {key(answer)}")
        else:
            problems += [f"{obj['kind']}/{obj['metadata']['name']}{d}" for d in differences(obj, answer)]
    return problems


@pytest.mark.parametrize("step", STEPS)
def test_rendered_objects_are_accepted_unchanged(apiserver, renders, step):
    problems = stored_problems(apiserver, layers(renders[step]))
    assert not problems, "\n".join(problems)


def test_the_check_fails_on_unknown_fields_and_rewritten_values(apiserver):
    """The check above can fail: server-side apply refuses a field the schema does not declare (a plain
    apply would prune it silently), and a rewritten value shows up in the comparison."""
    ngc = {"apiVersion": "deckhouse.io/v1alpha1", "kind": "NodeGroupConfiguration",
           "metadata": {"name": "d8-registry-selfcheck.sh"},
           "spec": {"content": "true", "weight": 1, "nodeGroups": ["*"], "bundles": ["*"], "unknownField": "x"}}
    with pytest.raises(KubectlError, match=r"\.spec\.unknownField: field not declared in schema"):
        stored_problems(apiserver, [[ngc]])
    limits = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "selfcheck"},
              "spec": {"limits": [{"type": "Container", "default": {"cpu": "0.5"}}]}}
    assert stored_problems(apiserver, [[limits]]) == [
        "LimitRange/selfcheck.spec.limits[0].default.cpu: rendered '0.5', stored '500m'"]
