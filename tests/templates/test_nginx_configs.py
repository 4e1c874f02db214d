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
"""Every nginx config the module ships, as the cluster receives it, accepted by the image's own nginx (SPEC 5.4-5.6).

The real hooks run on the example cluster for each placement and upstream variant, Helm renders the chart, and the
configs are taken from where consumers read them: the in-cluster proxy's Secret (Direct), each master's node-config
Secret (Proxy, Local fronts) and the node LB step's payload. Each goes through `nginx -t` of the nginx built with
images/registry-nginx/configure-flags, with the TLS files from the same Secret (the project PKI).
"""

from __future__ import annotations

import base64

import pytest
from d8registry import cluster as cluster_mod
from d8registry import helm
from d8registry.operator.module import ModuleHarness

from .. import nginx_build
from ..node.conftest import payload_of

NOW = {"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"}
# placement + upstream variant -> registry settings. Direct is the only placement whose front may run without
# authentication (anonymous upstream); an upstream path that is a parent of system/deckhouse changes the locations.
VARIANTS = {
    "direct-license": {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ee",
                                                    "license": "lic-123456"}},
    "direct-anonymous": {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ce"}},
    "direct-parent-path-http": {"mode": "Direct", "direct": {"imagesRepo": "10.1.2.3:5000/system",
                                                             "scheme": "HTTP"}},
    "proxy-user": {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com:5000/d8/ee", "username": "u",
                                              "password": "p4ss", "ttl": "1h"}},
    "proxy-anonymous-parent-path": {"mode": "Proxy", "proxy": {"imagesRepo": "mirror.example.com/system"}},
    "local": {"mode": "Local"},
}
INCLUSTER_SECRET = "registry-incluster-proxy-config"


def _ready(harness: ModuleHarness) -> None:
    """What the controllers the harness stands in for would report: the checker passed, every master's
    registry static pod runs the published version, and bashible applied the containerd payload."""
    internal = harness.module_values["internal"]
    internal["checker"]["state"] = {"version": internal["checker"]["params"]["version"], "ready": True,
                                    "message": "Mode: Default"}
    state = internal["orchestrator"]["state"]
    harness.objects = [o for o in harness.objects
                       if o["kind"] not in ("NodeGroupConfiguration", "Pod")]
    for node, entry in (state.get("node_services") or {}).get("nodes", {}).items():
        harness.objects.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"registry-nodeservices-{node}", "namespace": "d8-system",
                         "labels": {"app": "registry", "component": "registry-service", "type": "node-services"},
                         "annotations": {"registry.deckhouse.io/config-version": entry["version"]},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node}]},
            "spec": {"nodeName": node}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    version = ((state.get("node_config") or {}).get("containerd") or {}).get("version")
    if version:
        for obj in harness.objects:
            if obj["kind"] == "Node":
                obj["metadata"].setdefault("annotations", {})["registry.deckhouse.io/version"] = version
        harness.objects.append({"apiVersion": "deckhouse.io/v1alpha1", "kind": "NodeGroupConfiguration",
                                "metadata": {"name": "d8-registry-containerd.sh",
                                             "annotations": {"registry.deckhouse.io/config-version": version}},
                                "spec": {}})


def _published(state: dict, mode: str) -> bool:
    if mode == "Direct":
        return bool(state.get("incluster_proxy"))
    lb_files = ((state.get("node_config") or {}).get("lb") or {}).get("files") or {}
    return bool((state.get("node_services") or {}).get("nodes")) and "nginx.conf" in lb_files


def _configs(repo_root, settings: dict) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (nginx.conf, the files next to it) of every nginx config Helm renders for these settings."""
    base = cluster_mod.load().with_registry_settings(settings)
    harness = ModuleHarness(repo_root, base.objects, base.globals, in_process=True, env=dict(NOW))
    harness.synchronize()
    for _ in range(6):  # bounded: each round is one reconcile of the real hooks
        harness.before_helm()
        if _published(harness.module_values["internal"]["orchestrator"]["state"], settings["mode"]):
            break
        _ready(harness)
    else:
        raise AssertionError(f"the hooks never published the data plane for {settings}")
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for obj in helm.render(repo_root, harness.helm_values()):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Secret" and "nginx.conf" in obj.get("data", {}):
            files = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
            found[name] = (files["nginx.conf"], files)
        if name == "NodeGroupConfiguration/d8-registry-node-lb.sh":
            _, payload = payload_of(obj["spec"]["content"])
            if payload["files"].get("nginx.conf"):
                found[name] = (payload["files"]["nginx.conf"], {})
    return found


@pytest.fixture(scope="module")
def rendered(repo_root, helm_bin):
    return {variant: _configs(repo_root, settings) for variant, settings in VARIANTS.items()}


def _nginx_t(tmp_path, conf: str, files: dict[str, str]) -> None:
    root = tmp_path
    for directory in nginx_build.POD_DIRS:
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for name in ("ca.crt", "front.crt", "front.key", "upstream-ca.crt"):
        if name in files:
            (root / "pki" / name).write_text(files[name])
    if "htpasswd" in files:
        (root / "config" / "front" / "htpasswd").write_text(files["htpasswd"])
    path = root / "nginx.conf"
    path.write_text(nginx_build.relocate(conf, root))
    result = nginx_build.check(path, root)
    assert result.returncode == 0, f"nginx -t refused the config:\n{result.stderr}\n--- config ---\n{conf}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_front_passes_nginx_t_of_the_image_build(rendered, variant, tmp_path):
    fronts = {name: item for name, item in rendered[variant].items() if name.startswith("Secret/")}
    expected = 1 if VARIANTS[variant]["mode"] == "Direct" else 3  # the example cluster has three masters
    assert len(fronts) == expected, sorted(fronts)
    for index, (name, (conf, files)) in enumerate(sorted(fronts.items())):
        assert {"ca.crt", "front.crt", "front.key"} <= set(files), f"{name}: the front's TLS pair or CA is not next to it"
        _nginx_t(tmp_path / str(index), conf, files)


def test_the_variants_cover_each_front_shape(rendered):
    """Authentication on and off, the mapped and the regex upstream location, the Local ACL."""
    confs = [conf for configs in rendered.values() for name, (conf, _) in configs.items() if name.startswith("Secret/")]
    assert any("auth_basic off;" in c.split("location = /healthz")[0] for c in confs)
    assert any('auth_basic "Deckhouse registry";' in c and "rewrite ^/v2/system/deckhouse" in c for c in confs)
    assert any("location ~ ^/v2/system/ {" in c for c in confs)
    assert any("$registry_deny" in c for c in confs)


@pytest.mark.parametrize("variant", ["proxy-user", "local"])
def test_the_node_lb_passes_nginx_t_of_the_image_build(rendered, variant, tmp_path):
    """The stream module is built into the image: the LB config loads no module and needs none."""
    conf, _ = rendered[variant]["NodeGroupConfiguration/d8-registry-node-lb.sh"]
    assert "load_module" not in conf and conf.count("max_fails=1") == 3
    _nginx_t(tmp_path, conf, {})
