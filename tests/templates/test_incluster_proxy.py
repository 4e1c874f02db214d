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
"""The Direct placement's Deployment, PDB, VPA and ServiceAccount (SPEC 5.6, 8.2, 8.5), rendered by Helm
from values the orchestrator produced after the switch reached the InClusterProxyReady stage."""

from __future__ import annotations

import base64
import copy

import pytest
from d8registry import cluster as cluster_mod
from d8registry import helm
from d8registry.operator.module import ModuleHarness

from .conftest import validate_object

DIRECT = {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ee", "license": "lic-123456"}}
ANONYMOUS = {"mode": "Direct", "direct": {"imagesRepo": "registry.example.com/deckhouse/ce"}}
NAME = "registry-incluster-proxy"


def _play_bashible(harness: ModuleHarness) -> None:
    """Nodes and the NGC report the containerd payload the orchestrator published."""
    version = harness.module_values["internal"]["orchestrator"]["state"]["node_config"]["containerd"]["version"]
    for obj in harness.objects:
        if obj["kind"] == "Node":
            obj["metadata"].setdefault("annotations", {})["registry.deckhouse.io/version"] = version
    harness.objects = [o for o in harness.objects if o["kind"] != "NodeGroupConfiguration"]
    harness.objects.append({"apiVersion": "deckhouse.io/v1alpha1", "kind": "NodeGroupConfiguration",
                            "metadata": {"name": "d8-registry-containerd.sh",
                                         "annotations": {"registry.deckhouse.io/config-version": version}},
                            "spec": {}})


def _render(repo_root, registry: dict, tweak=None) -> list[dict]:
    cluster = cluster_mod.load().with_registry_settings(registry)
    global_values = copy.deepcopy(cluster.globals)
    if tweak:
        tweak(global_values)
    harness = ModuleHarness(repo_root, cluster.objects, global_values, in_process=True,
                            env={"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"})
    harness.synchronize()
    harness.before_helm()
    checker = harness.module_values["internal"]["checker"]
    checker["state"] = {"version": checker["params"]["version"], "ready": True, "message": "Mode: Default"}
    harness.before_helm()
    _play_bashible(harness)
    harness.before_helm()
    assert harness.module_values["internal"]["orchestrator"]["state"].get("incluster_proxy"), \
        "the switch reached the in-cluster proxy stage"
    return helm.render(repo_root, harness.helm_values())


@pytest.fixture(scope="module")
def direct(repo_root, helm_bin):
    return _render(repo_root, DIRECT)


def _kind(objects, kind):
    return [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == NAME]


def _deployment(objects):
    (deployment,) = _kind(objects, "Deployment")
    return deployment


def test_objects_are_valid_and_labelled(direct):
    names = {(o["kind"], o["metadata"]["name"]) for o in direct}
    for kind in ("Deployment", "PodDisruptionBudget", "VerticalPodAutoscaler", "ServiceAccount"):
        assert (kind, NAME) in names, kind
    for obj in direct:
        validate_object(obj)
        if obj["metadata"]["name"] == NAME and obj["kind"] != "ServiceAccount":
            labels = obj["metadata"]["labels"]
            assert labels["app"] == "registry" and labels["component"] == "registry-service"
            assert labels["type"] == "incluster-proxy" and labels["module"] == "registry"


def test_versions_and_config_checksum_roll_the_pods(direct):
    deployment = _deployment(direct)
    secret = next(o for o in direct if o["metadata"]["name"] == "registry-incluster-proxy-config")
    version = secret["metadata"]["annotations"]["registry.deckhouse.io/version"]
    for meta in (deployment["metadata"], deployment["spec"]["template"]["metadata"]):
        assert meta["annotations"]["registry.deckhouse.io/version"] == version
        assert len(meta["annotations"]["checksum/config"]) == 64
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert {"nginx.conf", "config.yaml", "htpasswd", "front.crt", "front.key", "ca.crt"} <= set(data)
    assert data["htpasswd"].startswith("license-token:$2b$")
    assert "listen 0.0.0.0:5001 ssl;" in data["nginx.conf"]
    assert "rewrite ^/v2/system/deckhouse(/.*)$ /v2/deckhouse/ee$1 break;" in data["nginx.conf"]
    assert len(version) == 64 and int(version, 16) >= 0


def test_pod_spec_follows_the_placement_rules(direct):
    deployment = _deployment(direct)
    spec = deployment["spec"]
    assert spec["replicas"] == 3 and spec["revisionHistoryLimit"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == NAME and pod["automountServiceAccountToken"] is False
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {"key": "node.deckhouse.io/uninitialized", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 64535, "runAsGroup": 64535, "fsGroup": 64535,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"front", "distribution"}
    base = "registry.deckhouse.ru/deckhouse/ee@sha256:"
    assert containers["front"]["image"].startswith(base) and containers["distribution"]["image"].startswith(base)
    assert [(p["name"], p["containerPort"]) for p in containers["front"]["ports"]] == \
        [("registry", 5001), ("https-metrics", 5004)]
    for container in containers.values():
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["scheme"] == "HTTPS" and container[probe]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]["ephemeral-storage"] == "60Mi"
        assert container["imagePullPolicy"] == "IfNotPresent"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["emptyDir"] == {"sizeLimit": "5Gi"} and "emptyDir" in volumes["tmp"]
    assert [i["key"] for i in volumes["front-config"]["secret"]["items"]] == ["nginx.conf", "htpasswd"]
    assert [i["key"] for i in volumes["pki"]["secret"]["items"]] == ["front.crt", "front.key", "ca.crt"]
    mounts = {m["mountPath"]: m for m in containers["distribution"]["volumeMounts"]}
    assert mounts["/config/distribution"]["readOnly"] and "/data" in mounts
    env = {e["name"]: e["value"] for e in containers["distribution"]["env"]}
    assert env == {"SSL_CERT_DIR": "/etc/ssl/certs"}, "no upstream CA and no cluster proxy in the example"


def test_pdb_and_vpa(direct):
    (pdb,) = _kind(direct, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == _deployment(direct)["spec"]["selector"]["matchLabels"]
    (vpa,) = _kind(direct, "VerticalPodAutoscaler")
    assert vpa["spec"]["updatePolicy"]["updateMode"] == "Initial"
    assert vpa["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}
    assert [p["containerName"] for p in vpa["spec"]["resourcePolicy"]["containerPolicies"]] == ["front", "distribution"]
    (account,) = _kind(direct, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def _single_master_behind_a_proxy(global_values: dict) -> None:
    global_values["enabledModules"] = [m for m in global_values["enabledModules"] if m != "vertical-pod-autoscaler"]
    global_values["discovery"]["clusterControlPlaneIsHighlyAvailable"] = False
    global_values["clusterConfiguration"]["proxy"] = {"httpsProxy": "http://proxy.example.com:3128",
                                                      "noProxy": ["internal.example.com"]}


def test_anonymous_upstream_without_ha_vpa_behind_a_cluster_proxy(repo_root, helm_bin):
    objects = _render(repo_root, ANONYMOUS, _single_master_behind_a_proxy)
    for obj in objects:
        validate_object(obj)
    assert not _kind(objects, "VerticalPodAutoscaler")
    deployment = _deployment(objects)
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert "affinity" not in pod
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert [i["key"] for i in volumes["front-config"]["secret"]["items"]] == ["nginx.conf"]
    secret = next(o for o in objects if o["metadata"]["name"] == "registry-incluster-proxy-config")
    conf = base64.b64decode(secret["data"]["nginx.conf"]).decode()
    assert "auth_basic off;" in conf and "auth_basic_user_file" not in conf
    containers = {c["name"]: c for c in pod["containers"]}
    env = {e["name"]: e["value"] for e in containers["distribution"]["env"]}
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy.example.com:3128"
    assert "internal.example.com" in env["NO_PROXY"] and "registry.d8-system.svc" in env["NO_PROXY"]
    assert "env" not in containers["front"], "only the upstream-facing container gets the proxy"


def test_nothing_rendered_outside_direct(rendered):
    for scenario, objects in rendered.items():
        kinds = {o["kind"] for o in objects if o["metadata"]["name"] == NAME}
        assert not kinds & {"Deployment", "PodDisruptionBudget", "VerticalPodAutoscaler"}, scenario
