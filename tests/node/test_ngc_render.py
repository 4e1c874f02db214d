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
"""The three NodeGroupConfigurations as Helm renders them: layout, data only in the payload literal, shell-clean."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess

import pytest

from ..templates.conftest import validate_object
from .conftest import NGC_BODIES, header, node_file, payload_of

BASE64_LITERAL = re.compile(r"[A-Za-z0-9+/=]+")
EXPECTED = {
    "d8-registry-nodeservices.sh": (40, ["master"]),
    "d8-registry-node-lb.sh": (41, ["*"]),
    "d8-registry-containerd.sh": (45, ["*"]),
}
SCENARIOS = ("legacy", "direct", "proxy")


def body(name: str) -> str:
    """What the chart places below the header: the shared helpers, then the step's own body."""
    return node_file("lib.sh") + node_file(NGC_BODIES[name])


def shellcheck(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (make debs installs it)")
    return subprocess.run(["shellcheck", *args], input=stdin, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_three_ngcs_always_rendered_with_labels_and_version(scenarios, scenario):
    rendered = scenarios[scenario]
    ngcs = {o["metadata"]["name"]: o for o in rendered.objects if o["kind"] == "NodeGroupConfiguration"}
    assert set(ngcs) == set(EXPECTED)
    for name, (weight, groups) in EXPECTED.items():
        obj = ngcs[name]
        validate_object(obj)
        assert obj["spec"]["weight"] == weight
        assert obj["spec"]["nodeGroups"] == groups
        assert obj["spec"]["bundles"] == ["*"]
        labels = obj["metadata"]["labels"]
        assert labels["heritage"] == "deckhouse" and labels["module"] == "registry"
        version, _ = payload_of(obj["spec"]["content"])
        assert obj["metadata"]["annotations"] == {"registry.deckhouse.io/config-version": version}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_content_is_header_plus_unchanged_body(scenarios, scenario):
    rendered = scenarios[scenario]
    node_config = rendered.state["node_config"]
    payloads = {"d8-registry-containerd.sh": node_config["containerd"], "d8-registry-node-lb.sh": node_config["lb"],
                "d8-registry-nodeservices.sh": {}}
    for name, payload in payloads.items():
        content = rendered.content(name)
        version, decoded = payload_of(content)
        assert decoded == payload
        literal = content.split("\n")[3].split("'")[1]
        assert BASE64_LITERAL.fullmatch(literal)
        # Helm's toJson gives the same bytes as the hook's canonical JSON (sorted keys, no spaces)
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert base64.b64decode(literal).decode() == canonical
        if name == "d8-registry-nodeservices.sh":
            assert version == hashlib.sha256(body(name).encode()).hexdigest()
        else:
            assert version == payload["version"]
        # structural equivalence: everything except the two data lines is the static text
        assert content == header(version, literal) + body(name)
        assert "{{" not in content and "}}" not in content


def test_payload_of_a_switch_in_progress_is_not_empty(scenarios):
    containerd = scenarios["direct"].state["node_config"]["containerd"]
    assert containerd["kind"] == "Transitional" and containerd["hosts"]
    lb = scenarios["proxy"].state["node_config"]["lb"]
    assert lb["endpoints"] and "registry-proxy.yaml" in lb["files"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_content_passes_bash_n_and_shellcheck(scenarios, scenario):
    for name in EXPECTED:
        content = scenarios[scenario].content(name)
        proc = subprocess.run(["bash", "-n"], input=content, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        proc = shellcheck(["-s", "bash", "-"], content)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}"


def test_bodies_pass_shellcheck_and_bash_n():
    """Each body as the chart composes it: the shared helpers (templates/node/_lib.sh.tpl) and then the body."""
    lib = node_file("lib.sh")
    for name in NGC_BODIES.values():
        script = lib + node_file(name)
        proc = shellcheck(["-s", "bash", "-"], script)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}"
        proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_step_carries_the_shared_helpers_once(scenarios, scenario):
    helpers = "d8reg_cleanup() {"
    for name in EXPECTED:
        content = scenarios[scenario].content(name)
        assert content.count(helpers) == 1, name


def test_bodies_follow_the_shell_safety_rules():
    for name in NGC_BODIES.values():
        text = node_file(name)
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert "eval " not in code and "`" not in code, name
        assert not re.search(r"(^|\s)(source|\.)\s", code), name
        # heredocs only with quoted delimiters
        assert not re.search(r"<<-?\s*[A-Za-z_]", code), name
        assert 'readonly ROOT="${D8_REGISTRY_NODE_ROOT:-}"' in text
        assert "{{" not in text and "}}" not in text
