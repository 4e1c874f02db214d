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
"""Every node step takes its payload as exactly one JSON object (SPEC 6.1): a payload literal that is empty,
not JSON, another JSON type or several documents fails the step before it writes or reports anything.

Helm always writes one object, so these contents are the chart's own with the payload line edited by hand.
Several documents were once taken document by document: the containerd step wrote hosts files, the state
and config.toml, and restarted containerd, for a payload with a number or a second object in front."""

from __future__ import annotations

import base64
import json
import re

import pytest

from .conftest import CONFIG_V2, payload_of

STEPS = ("d8-registry-containerd.sh", "d8-registry-node-lb.sh", "d8-registry-nodeservices.sh")


def _with_payload(content: str, literal: str) -> str:
    lines = content.split("\n")
    assert lines[3].startswith("readonly D8REG_PAYLOAD='")
    lines[3] = f"readonly D8REG_PAYLOAD='{literal}'"
    return "\n".join(lines)


def _payload_text(scenarios, step: str) -> str:
    return json.dumps(payload_of(scenarios["proxy"].content(step))[1])


# payload texts, {p} standing for the step's own good payload
BROKEN = {
    "empty": "",
    "blank": " \n",
    "not JSON": "{{",
    "trailing garbage": "{p}x",
    "array": "[{p}]",
    "string": '"{{}}"',
    "null": "null",
    "two objects": "{p}\n{p}",
    "number in front": "1 {p}",
    "empty object in front": "{{}} {p}",
    "empty object behind": "{p} {{}}",
    "number behind": "{p} 1",
}


def _node(make_node):
    node = make_node("master-1").with_kubelet().with_admin()
    node.write("etc/containerd/config.toml", CONFIG_V2)
    return node


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("step", STEPS)
def test_a_payload_that_is_not_one_object_fails_before_anything_happens(scenarios, make_node, step, case):
    text = BROKEN[case].format(p=_payload_text(scenarios, step))
    node = _node(make_node)
    node.kube_objects = node.kube_objects + [scenarios["proxy"].secret("registry-node-config-master-1")]
    before = node.snapshot()
    proc = node.run(_with_payload(scenarios["proxy"].content(step), base64.b64encode(text.encode()).decode()))
    assert proc.returncode == 1
    assert proc.stderr.endswith("ERROR: payload is not a JSON object\n"), proc.stderr
    assert node.snapshot() == before
    assert node.calls() == []


@pytest.mark.parametrize("step", STEPS)
def test_a_payload_that_is_not_base64_fails(scenarios, make_node, step):
    node = _node(make_node)
    before = node.snapshot()
    proc = node.run(_with_payload(scenarios["proxy"].content(step), "not base64!"))
    assert proc.returncode == 1 and proc.stderr.endswith("ERROR: payload is not valid base64\n"), proc.stderr
    assert node.snapshot() == before and node.calls() == []


@pytest.mark.parametrize("step", STEPS)
def test_the_payload_may_be_laid_out_in_any_way(scenarios, make_node, step):
    """One object however it is spaced: the same run as with the chart's compact literal."""
    compact, spaced = _node(make_node), _node(make_node)
    for node in (compact, spaced):
        node.kube_objects = node.kube_objects + [scenarios["proxy"].secret("registry-node-config-master-1")]
    content = scenarios["proxy"].content(step)
    text = json.dumps(payload_of(content)[1], indent=3) + "\n\n"
    first = compact.run(content)
    second = spaced.run(_with_payload(content, base64.b64encode(text.encode()).decode()))
    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    assert compact.files_under("") == spaced.files_under("")
    assert _calls(compact) == _calls(spaced)


def _calls(node) -> str:
    """The node's calls with its own root and mktemp's random suffixes left out."""
    text = json.dumps(node.calls()).replace(str(node.root), "ROOT")
    return re.sub(r"\.d8reg\.[A-Za-z0-9]{6}", ".d8reg.TMP", text)
