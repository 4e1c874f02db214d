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
"""Fuzzing the nginx producers against the real consumer (SPEC 10.2, 10.3, 12.2).

Hypothesis generates registry settings (valid and mutated, from test_settings_properties) and node data (master
addresses and names, the LB image) and runs them through the producers the orchestrator calls: settings.evaluate,
then dataplane.incluster_proxy_files (Direct) or dataplane.node_services_files (Proxy, Local) per master, and
lb.lb_payload for the node LB. Oracle: a producer either raises ValueError, which it must do exactly when a node
value is not well-formed, or returns a config that `nginx -t` of the image's build accepts. The CI profile runs a
few dozen examples (each runs nginx several times); `make fuzz` a thousand.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from lib import dataplane, front, lb, pki, stages, users
from lib import settings as registry_settings

from .. import nginx_build
from .test_settings_properties import IPV4_RE, hostile_text, mutated_settings, valid_settings

NOW = datetime(2026, 11, 27, 10, tzinfo=UTC)
CA, _ = pki.ensure_ca(None, NOW)
USERS = users.ensure_users(users.USERS, None)
NODE_NAME_RE = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?", re.A)
DOMAIN_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*", re.A)
LB_IMAGES = ["registry.d8-system.svc:5001/system/deckhouse@sha256:" + "ab" * 32, ""]
# CI: a tenth of the profile's examples (20), `make fuzz` (HYPOTHESIS_PROFILE=fuzz): a thousand.
EXAMPLES = max(20, settings.default.max_examples // 10)

ipv4 = st.ip_addresses(v=4).map(str)


def mostly(good, bad):
    """Three in four from `good`: enough examples must be well-formed to get through to nginx."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda ok: good if ok else bad)


malformed_ip = st.one_of(hostile_text, ipv4.map(lambda ip: ip + "\n"), ipv4.map(lambda ip: " " + ip),
                         ipv4.map(lambda ip: ".".join(part.zfill(3) for part in ip.split("."))),
                         ipv4.map(lambda ip: ip + ";listen 0.0.0.0:80"), ipv4.map(lambda ip: ip + ":5001"))
master_name = st.from_regex(r"master-[a-z0-9]{1,6}", fullmatch=True)
good_domain = st.sampled_from(["cluster.local", "k8s.example.org", "c.local"])
FRONT_MODES = ("Direct", "Proxy", "Local")
# Clusters where every mode may run (containerd nodes, static cluster configuration).
ENVIRONMENTS = [registry_settings.Environment(True, "Containerd", "Static"),
                registry_settings.Environment(True, "ContainerdV2", "Static")]
# Most examples are well-formed so that configs reach nginx; the rest carry one malformed node value.
FLAWS = ["none", "none", "none", "ip", "domain"]


@st.composite
def node_data(draw):
    """(masters as (name, ip), cluster domain), at most one of them malformed."""
    flaw = draw(st.sampled_from(FLAWS))
    ips = draw(st.lists(ipv4, min_size=1, max_size=3, unique=True))
    if flaw == "ip":
        ips[draw(st.integers(0, len(ips) - 1))] = draw(malformed_ip)
    names = [f"master-{index}" for index in range(len(ips))]
    domain = draw(hostile_text) if flaw == "domain" else draw(good_domain)
    return list(zip(names, ips, strict=True)), domain


_SURROGATE = re.compile("[\ud800-\udfff]")


def as_delivered(value):
    """Settings as a hook receives them: JSON written by Go (Kubernetes API, addon-operator), which is valid
    UTF-8 only. Go decodes an escaped surrogate pair into its character and a lone surrogate into U+FFFD."""
    decoded = json.loads(json.dumps(value))
    if isinstance(decoded, dict):
        return {_SURROGATE.sub("\ufffd", key): as_delivered(item) for key, item in decoded.items()}
    if isinstance(decoded, list):
        return [as_delivered(item) for item in decoded]
    return _SURROGATE.sub("\ufffd", decoded) if isinstance(decoded, str) else decoded


def well_formed_ip(value: str) -> bool:
    return isinstance(value, str) and IPV4_RE.fullmatch(value) is not None


def nginx_accepts(root: Path, files: dict[str, str], conf_name: str = "nginx.conf") -> None:
    for name, directory in (("ca.crt", "pki"), ("front.crt", "pki"), ("front.key", "pki"), ("htpasswd", "front")):
        if name in files:
            (root / directory / name).write_text(files[name])
    conf = root / conf_name
    conf.write_text(nginx_build.loopback_listens(files[conf_name]))
    result = nginx_build.check(conf, root)
    assert result.returncode == 0, f"nginx -t refused a produced config:\n{result.stderr}\n{files[conf_name]}"


def layout(root: Path, listen: str) -> front.Layout:
    for directory in ("pki", "front", "tmp"):
        (root / directory).mkdir(exist_ok=True)
    return front.Layout(listen=listen, pki_dir=str(root / "pki"), front_dir=str(root / "front"),
                        temp_dir=str(root / "tmp"))


def render_fronts(root: Path, params: dict, nodes: list[tuple[str, str]], domain: str) -> int:
    """Fronts for these params as the orchestrator renders them; returns how many reached nginx -t."""
    mode = params.get("mode")
    upstream = stages.upstream_of(params)
    checked = 0
    if mode == "Direct":
        files, _ = dataplane.incluster_proxy_files(upstream, CA, "http-secret", domain, None, None, NOW,
                                                   layout=layout(root, "0.0.0.0"))
        nginx_accepts(root, files)
        return 1
    if mode not in ("Proxy", "Local"):
        return 0
    all_masters = [dataplane.Master(name, ip) for name, ip in nodes]
    for index, master in enumerate(all_masters):
        directory = root / f"m{index}"
        directory.mkdir()
        try:
            entry, _ = dataplane.node_services_files(
                master, all_masters, mode, upstream, CA, USERS, "http-secret", domain, None, None, NOW,
                layout=layout(directory, master.ip))
        except ValueError:
            # the hook drops malformed masters before this call; fed straight in, they must be refused
            assert not (all(well_formed_ip(ip) for _, ip in nodes) and DOMAIN_RE.fullmatch(domain)), (
                f"well-formed masters {nodes} were refused")
            continue
        assert well_formed_ip(master.ip), f"a malformed master address {master.ip!r} reached a front config"
        assert re.search(rf"^ +listen {re.escape(master.ip)}:[0-9]+ ssl;$", entry["files"]["nginx.conf"], re.M)
        nginx_accepts(directory, entry["files"])
        checked += 1
    return checked


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mostly(valid_settings().filter(lambda raw: raw.get("mode") in FRONT_MODES), mutated_settings()),
       env=st.sampled_from(ENVIRONMENTS), data=node_data())
def test_fuzz_fronts_from_settings_and_node_data_pass_nginx_t(raw, env, data):
    nodes, domain = data
    verdict = registry_settings.evaluate(as_delivered(raw), env)
    if not verdict.valid:
        event("settings refused")
        assert verdict.errors  # the hook stops here with a message; nothing is rendered
        return
    with tempfile.TemporaryDirectory(prefix="d8-nginx-fuzz-") as tmp:
        try:
            event(f"{verdict.params['mode']}: fronts through nginx -t: "
                  f"{render_fronts(Path(tmp), verdict.params, nodes, domain)}")
        except ValueError:
            # only node data the settings validation never saw may be refused here, never valid params
            assert not DOMAIN_RE.fullmatch(domain), f"valid params {verdict.params['mode']} were refused"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(ips=[], image=LB_IMAGES[0])
@given(ips=st.lists(mostly(ipv4, malformed_ip), min_size=1, max_size=3, unique=True),
       image=mostly(st.sampled_from(LB_IMAGES), hostile_text))
def test_fuzz_node_lb_config_from_master_addresses_passes_nginx_t(ips, image):
    endpoints = [f"{ip}:5001" for ip in ips]
    try:
        payload = lb.lb_payload(endpoints, image)
    except ValueError:
        event("LB input refused")
        assert not (all(well_formed_ip(ip) for ip in ips) and image in LB_IMAGES), "well-formed LB input refused"
        return
    assert all(well_formed_ip(ip) for ip in ips), f"a malformed address reached the LB config: {ips!r}"
    if not ips:
        event("no masters")
        assert payload["files"] == {}  # no masters: the step removes the LB, no config to check
        return
    conf = payload["files"]["nginx.conf"]
    servers = re.findall(r"server (\S+) max_fails", conf)
    assert servers == [f"{ipaddress.IPv4Address(ip)}:5001" for ip in ips]
    # the image goes into the pod manifest only: the config is the same whatever it is
    assert conf == lb.lb_payload(endpoints, "")["files"]["nginx.conf"]
    event(f"LB config through nginx -t with {len(ips)} masters")
    with tempfile.TemporaryDirectory(prefix="d8-nginx-fuzz-") as tmp:
        nginx_accepts(Path(tmp), payload["files"])
