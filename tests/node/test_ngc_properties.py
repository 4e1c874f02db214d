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
"""Property (SPEC 10.3): NGC content for random valid states is shell-clean and carries data only in the literal."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import subprocess
from datetime import UTC, datetime

from d8registry import cluster as cluster_mod
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lib import lb, node_config, pki

from .conftest import LB_IMAGE, NGC_BODIES, header, node_file, payload_of, render_values

CA = pki.ensure_ca(None, datetime(2026, 11, 27, tzinfo=UTC))[0].cert
BASE64_LITERAL = re.compile(r"[A-Za-z0-9+/=]+")
# Each example is one Helm process; the CI profile gets a bounded number, `make fuzz` the profile's.
EXAMPLES = settings.default.max_examples if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 50

octet = st.integers(min_value=1, max_value=254)
ipv4 = st.tuples(octet, st.integers(0, 255), st.integers(0, 255), octet).map(lambda t: ".".join(map(str, t)))
label = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
dns = st.lists(label, min_size=2, max_size=4).map(".".join)
host = st.one_of(dns, ipv4, st.tuples(dns, st.integers(1, 65535)).map(lambda t: f"{t[0]}:{t[1]}"))
segment = st.from_regex(r"[a-z0-9]{1,4}([._-][a-z0-9]{1,4}){0,2}", fullmatch=True)
repo_path = st.lists(segment, min_size=1, max_size=3).map("/".join)
username = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."),
                   min_size=1, max_size=16)
password = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=24)
node_name = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)


@st.composite
def node_configs(draw) -> tuple[dict, list[str]]:
    masters = draw(st.lists(ipv4, min_size=1, max_size=5, unique=True))
    mode = draw(st.sampled_from(["Proxy", "Local", "Direct", "Unmanaged"]))
    if mode in ("Proxy", "Local"):
        params = node_config.node_params({"mode": mode}, {"name": draw(username), "password": draw(password)}, CA)
    else:
        params = {"mode": mode, "scheme": draw(st.sampled_from(["HTTP", "HTTPS"])), "host": draw(host),
                  "path": draw(repo_path)}
        if draw(st.booleans()):
            params.update(username=draw(username), password=draw(password))
        if draw(st.booleans()):
            params["ca"] = CA
    mirror_map = node_config.mirrors(params, masters)
    if draw(st.booleans()):
        # a transition from some upstream to this target
        old = {"mode": "Unmanaged", "scheme": "HTTPS", "host": draw(host), "path": draw(repo_path)}
        mirror_map = node_config.transitional(node_config.mirrors(old, masters), mirror_map)
        kind = "Transitional"
    else:
        kind = "Final"
    uses_lb = mode in ("Proxy", "Local")
    names = draw(st.lists(node_name, min_size=1, max_size=3, unique=True))
    return {"containerd": node_config.containerd_payload(kind, mirror_map),
            "lb": lb.lb_payload([f"{ip}:5001" for ip in masters] if uses_lb else [], LB_IMAGE)}, names


# the version of the master step is the hash of what it runs: the shared helpers plus its body
NODESERVICES_BODY = node_file("lib.sh") + node_file(NGC_BODIES["d8-registry-nodeservices.sh"])


def render(node_cfg: dict, names: list[str]):
    """The whole chart for this state; node names reach it through node-services entries (their Secrets)."""
    values = {"global": copy.deepcopy(cluster_mod.load().globals),
              "registry": {"internal": {"orchestrator": {"state": {
                  "node_config": copy.deepcopy(node_cfg),
                  "node_services": {"run": True, "nodes": {
                      name: {"version": "0" * 64, "files": {"ca.crt": CA}} for name in names}}}}}}}
    return render_values(values)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node_configs())
def test_ngc_content_for_random_states(drawn):
    node_cfg, names = drawn
    rendered = render(node_cfg, names)
    assert {f"registry-node-config-{name}" for name in names} <= {o["metadata"]["name"] for o in rendered.objects}
    payloads = {"d8-registry-containerd.sh": node_cfg["containerd"], "d8-registry-node-lb.sh": node_cfg["lb"],
                "d8-registry-nodeservices.sh": {}}
    for name, payload in payloads.items():
        content = rendered.content(name)
        assert "{{" not in content and "}}" not in content
        literal = content.split("\n")[3].removeprefix("readonly D8REG_PAYLOAD='").removesuffix("'")
        assert BASE64_LITERAL.fullmatch(literal)
        version, decoded = payload_of(content)
        assert decoded == payload
        # structural equivalence with an inert render: only the two data lines depend on the state
        body = node_file("lib.sh") + node_file(NGC_BODIES[name])
        assert content == header(version, literal) + body
        proc = subprocess.run(["bash", "-n"], input=content, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
    assert payload_of(rendered.content("d8-registry-nodeservices.sh"))[0] == hashlib.sha256(
        NODESERVICES_BODY.encode()).hexdigest()
