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
"""The simulator's kubectl (sim/stubs/kubectl, plain bash) answers node steps from the objects of the tick
(sim/bashible.py writes one file per object): what a step reads, the NotFound it gets, and the label and
annotate calls and reads it leaves for the simulator, across ticks in which objects change or go."""

from __future__ import annotations

import json

from d8registry.sim.bashible import Bashible
from d8registry.sim.engine import STUBS

SECRET = {"apiVersion": "v1", "kind": "Secret",
          "metadata": {"name": "registry-node-config-master-0", "namespace": "d8-system"},
          "data": {"ca.crt": "QUJD", 'odd"key\\': "x"}, "note": "caf\u00e9\n"}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "master-0"}}

# what the node steps do: read the node's Secret (absent is empty output), then label and annotate the node
STEP = """set -euo pipefail
out="$D8_REGISTRY_NODE_ROOT/out"
kubectl --kubeconfig /etc/kubernetes/admin.conf -n d8-system get secret registry-node-config-master-0 \\
  --ignore-not-found -o json >"$out/secret.json"
kubectl --kubeconfig k label node master-0 --overwrite a.example.com/x=1 b=2 a.example.com/x='q"\\'
kubectl --kubeconfig k annotate node master-0 --overwrite registry.deckhouse.io/version=abc
kubectl -n d8-system get secret registry-node-config-master-0 -o json >/dev/null
"""
STRICT_GET = "kubectl -n d8-system get secrets registry-node-config-master-0 -o json"


def _run(bashible: Bashible, content: str, objects: list[dict]):
    steps = [{"metadata": {"name": "step.sh"}, "spec": {"content": content}}]
    return bashible.run([("master-0", steps, "[]")], objects)[0]


def test_steps_read_the_objects_of_each_tick_and_leave_their_calls(tmp_path):
    root = tmp_path / "master-0"
    (root / "out").mkdir(parents=True)
    bashible = Bashible(tmp_path / "work", STUBS, lambda node: root)
    (tmp_path / "work").mkdir()
    bashible.share = False

    run = _run(bashible, STEP, [NODE, SECRET])
    assert run.ok, run.error
    assert json.loads((root / "out/secret.json").read_text()) == SECRET
    assert (root / "out/secret.json").read_text() == json.dumps(SECRET) + "\n"  # as kubectl prints it
    assert run.calls == [
        {"verb": "label", "node": "master-0", "pairs": {"a.example.com/x": 'q"\\', "b": "2"}},
        {"verb": "annotate", "node": "master-0", "pairs": {"registry.deckhouse.io/version": "abc"}}]

    # the next tick: the Secret changed, then it is gone
    changed = {**SECRET, "data": {"ca.crt": "REVG"}}
    assert _run(bashible, STEP, [NODE, changed]).ok
    assert json.loads((root / "out/secret.json").read_text()) == changed
    run = _run(bashible, STEP, [NODE])
    assert not run.ok  # --ignore-not-found answers empty, a plain get fails like the API server
    assert (root / "out/secret.json").read_text() == ""
    assert run.error == 'Error from server (NotFound): secret "registry-node-config-master-0" not found'


def test_a_down_api_fails_every_call(tmp_path, monkeypatch):
    root = tmp_path / "master-0"
    root.mkdir()
    (tmp_path / "work").mkdir()
    bashible = Bashible(tmp_path / "work", STUBS, lambda node: root)
    monkeypatch.setenv("D8SIM_API_DOWN", "1")
    run = _run(bashible, STRICT_GET, [NODE, SECRET])
    assert not run.ok and run.error == "error: the server is currently unable to handle the request"
    run = _run(bashible, "kubectl label node master-0 a=b", [NODE, SECRET])
    assert not run.ok and run.calls == []


def test_objects_left_by_an_earlier_process_are_not_read(tmp_path):
    root = tmp_path / "master-0"
    root.mkdir()
    (tmp_path / "work").mkdir()
    first = Bashible(tmp_path / "work", STUBS, lambda node: root)
    assert _run(first, STRICT_GET, [NODE, SECRET]).ok
    # a restarted simulator on the same work dir, in a world without the Secret
    again = Bashible(tmp_path / "work", STUBS, lambda node: root)
    run = _run(again, STRICT_GET, [NODE])
    assert not run.ok and "NotFound" in run.error
