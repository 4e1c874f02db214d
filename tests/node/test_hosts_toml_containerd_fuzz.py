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
"""Fuzz (SPEC 10.3, 12.2): generated settings and node data -> hosts.toml from hooks/lib/node_config -> placed
by the containerd step -> loaded by a real containerd (1.6 and 2.x) for a CRI pull.

One daemon per containerd major runs for the session, started from the config.toml its containerd step
wrote, in a network namespace with loopback only: every mirror a generated hosts.toml names fails at
once (refused, unreachable or unresolvable) and nothing leaves the machine. Each example places its
payload with the real step (which also removes the previous example's dirs) and pulls one reference per
hosts dir. containerd logs every request it makes at debug level; the hosts it tried, in order, must be
exactly the mirrors the producer meant, followed by the dir's own default server. A hosts.toml containerd
could not parse, or a CA file it could not load, gives no such sequence.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime

import pytest
from d8registry import containerd_node as cn
from d8registry import loopback as lo
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lib import enums, node_config, pki, users

CAS = [pki.ensure_ca(None, datetime(2026, 11, 27, tzinfo=UTC))[0].cert for _ in range(2)]
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
# Each example runs the step (bash + jq, ~1.5 s) and a pull per dir on each daemon: small in CI, large in `make fuzz`.
EXAMPLES = 150 if FUZZ else 8
PROBE_DIGEST = "sha256:" + "0" * 64
# one debug line per request: the host it went to and its URL; the manifest requests are the resolve attempts
_REQUEST_RE = re.compile(r'msg="do request" host="?([^"\s]+)[^\n]* url="[^"\n]*/manifests/')

octet = st.integers(min_value=1, max_value=254)
ipv4 = st.tuples(octet, st.integers(0, 255), st.integers(0, 255), octet).map(lambda t: ".".join(map(str, t)))
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# At least two labels: an image reference takes a first component without '.' or ':' (other than localhost) for a
# Docker Hub namespace, so such a host cannot be addressed by any reference (and `settings` does not refuse it).
dns = st.lists(label, min_size=2, max_size=4).map(".".join).filter(lambda name: not name.replace(".", "").isdigit())
host = st.one_of(dns, ipv4, st.tuples(st.one_of(dns, ipv4), st.integers(1, 65535)).map(lambda t: f"{t[0]}:{t[1]}"))
segment = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,4}){0,2}", fullmatch=True)
repo_path = st.lists(segment, min_size=1, max_size=3).map("/".join)
username = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=":"), min_size=1, max_size=24)
password = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


@st.composite
def upstream_section(draw) -> dict:
    section = {"imagesRepo": f"{draw(host)}/{draw(repo_path)}", "scheme": draw(st.sampled_from(["HTTP", "HTTPS"]))}
    if draw(st.booleans()):
        section.update(username=draw(username), password=draw(password))
    if section["scheme"] == "HTTPS" and draw(st.booleans()):
        section["ca"] = "\n".join(draw(st.lists(st.sampled_from(CAS), min_size=1, max_size=2, unique=True)))
    return section


@st.composite
def mirror_maps(draw) -> dict:
    """A node's mirror map for generated settings, as the orchestrator derives it."""
    mode = draw(st.sampled_from(["Direct", "Unmanaged", "Proxy", "Local"]))
    masters = draw(st.lists(ipv4, min_size=1, max_size=3, unique=True))
    if mode in ("Proxy", "Local"):
        ro = users.ensure_users(("ro",), None)["ro"]
        params = node_config.node_params({"mode": mode}, ro, draw(st.sampled_from(CAS)))
    else:
        verdict = lo.settings.evaluate({"mode": mode, mode.lower(): draw(upstream_section())}, lo.ENVIRONMENT)
        assume(verdict.valid)
        params = node_config.node_params(verdict.params, None, None)
    return node_config.mirrors(params, masters)


@st.composite
def payloads(draw) -> tuple[dict, dict]:
    new = draw(mirror_maps())
    if draw(st.booleans()):
        merged = node_config.transitional(draw(mirror_maps()), new)
        return node_config.containerd_payload(enums.KIND_TRANSITIONAL, merged), merged
    return node_config.containerd_payload(enums.KIND_FINAL, new), new


@pytest.fixture(scope="session", params=[1, 2], ids=["containerd1.6", "containerd2"])
def fuzz_node(request):
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (mount and network namespaces); run the suite as root like CI")
    workdir = lo.make_workdir("d8fz-")
    procs = lo.Processes(workdir)
    try:
        seed = {"seed.example": [{"scheme": "https", "host": "seed.example"}]}
        yield cn.start(procs, workdir / "node", seed, request.param, name=f"containerd-fuzz-{request.param}",
                       net_namespace=True)
    except lo.Unavailable as exc:
        pytest.fail(str(exc))
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def _requested_hosts(node: cn.Node, since: int) -> list[str]:
    text = node.procs.log(node.name).read_bytes()[since:].decode(errors="replace")
    return _REQUEST_RE.findall(text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                                        HealthCheck.function_scoped_fixture])
@given(data=payloads())
def test_fuzz_containerd_loads_every_generated_hosts_toml(fuzz_node, data):
    payload, mirror_map = data
    node = fuzz_node
    step = node.run_step(payload, net_namespace=True)
    assert step.returncode == 0, step.stderr[-2000:]
    # nothing outside the places the step owns
    assert {str(p.relative_to(node.root)) for p in node.root.iterdir()} == {"etc", "var"}
    assert sorted(p.name for p in node.hosts_dir.iterdir()) == sorted(payload["hosts"])
    for directory, mirrors in mirror_map.items():
        mark = node.procs.log(node.name).stat().st_size
        result = node.containerd.crictl("pull", f"{directory}/fuzz/probe@{PROBE_DIGEST}", timeout=60)
        assert result.returncode != 0, "nothing listens anywhere in the daemon's network namespace"
        tried = _requested_hosts(node, mark)
        expected = [m["host"] for m in mirrors] + [directory]
        # containerd tries each mirror once in order, then the dir's server (`server` = the dir itself when set)
        assert tried == expected, (tried, expected, result.stderr[-1500:],
                                   (node.hosts_dir / directory / "hosts.toml").read_text())
