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
"""d8-registry-node-lb.sh run in temp roots (SPEC 5.9, 6.5) and the static pod manifest it installs."""

from __future__ import annotations

import hashlib

import kubernetes_validate
import pytest
import yaml
from lib import lb

from .. import nginx_build
from .conftest import LB_IMAGE, MARKER, mode, render_node_config, version_of

NGC = "d8-registry-node-lb.sh"
CONF = "etc/kubernetes/registry-proxy/nginx.conf"
DIR_MARKER = "etc/kubernetes/registry-proxy/.managed-by-d8-registry"
MANIFEST = "etc/kubernetes/manifests/registry-proxy.yaml"
OWNER = "64535:64535"


def content_for(payload: dict) -> str:
    return render_node_config({"lb": payload}).content(NGC)


def test_manifest_is_a_valid_hardened_static_pod():
    payload = lb.lb_payload(["10.0.0.12:5001", "10.0.0.11:5001"], LB_IMAGE)
    text = payload["files"]["registry-proxy.yaml"]
    assert text.startswith(MARKER + "\n")
    pod = yaml.safe_load(text)
    kubernetes_validate.validate(pod, "1.31", strict=True)
    assert pod["metadata"]["labels"] == {"app": "registry", "component": "registry-node-lb", "heritage": "deckhouse",
                                         "module": "registry"}
    assert pod["metadata"]["annotations"]["registry.deckhouse.io/config-hash"] == hashlib.sha256(
        payload["files"]["nginx.conf"].encode()).hexdigest()
    spec = pod["spec"]
    assert spec["hostNetwork"] is True and spec["priorityClassName"] == "system-node-critical"
    assert spec["securityContext"]["runAsUser"] == 64535
    (container,) = spec["containers"]
    assert container["image"] == LB_IMAGE
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"] == {"host": "127.0.0.1", "port": 5001}
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    assert "&id" not in text, "no YAML anchors in a manifest kubelet reads"


def test_nginx_accepts_the_lb_config_the_step_writes(scenarios, make_node, tmp_path):
    node = make_node("worker-0")
    assert node.run(scenarios["proxy"].content(NGC)).returncode == 0
    # the image's nginx build (stream built in, as in the image): the file as the step wrote it, only its
    # listener moved to a free loopback port (nginx -t binds it)
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_build.loopback_listens(node.read(CONF)))
    proc = nginx_build.check(conf, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_new_nginx_conf_changes_the_manifest():
    one = lb.lb_payload(["10.0.0.11:5001"], LB_IMAGE)
    two = lb.lb_payload(["10.0.0.11:5001", "10.0.0.12:5001"], LB_IMAGE)
    assert one["files"]["registry-proxy.yaml"] != two["files"]["registry-proxy.yaml"]


@pytest.mark.parametrize("endpoint", ["10.0.0.1:80", "10.0.0.01:5001", "10.0.0.1", "::1:5001", "10.0.0.1:5001;",
                                      "a.example.com:5001"])
def test_hostile_endpoints_are_rejected_by_the_producer(endpoint):
    with pytest.raises(ValueError):
        lb.lb_payload([endpoint], LB_IMAGE)


def test_first_run_installs_the_lb_and_the_second_changes_nothing(scenarios, make_node):
    rendered = scenarios["proxy"]
    payload = rendered.state["node_config"]["lb"]
    node = make_node("worker-0")
    content = rendered.content(NGC)
    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert node.read(CONF) == payload["files"]["nginx.conf"]
    assert node.read(MANIFEST) == payload["files"]["registry-proxy.yaml"]
    assert node.read(DIR_MARKER) == MARKER + "\n"
    assert mode(node.path(CONF)) == 0o640 and mode(node.path(MANIFEST)) == 0o600
    assert mode(node.path("etc/kubernetes/registry-proxy")) == 0o750
    assert node.calls("crictl") == [["pull", payload["image"]]]
    chowned = {argv[1].removeprefix(str(node.root)) for argv in node.calls("chown")}
    assert all(argv[0] == OWNER for argv in node.calls("chown"))
    assert "/etc/kubernetes/registry-proxy" in chowned
    assert node.temp_files() == []

    before = node.snapshot()
    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert node.snapshot() == before
    assert node.mutating_calls() == []


def test_new_endpoints_replace_config_then_manifest(make_node):
    node = make_node("worker-0")
    first = lb.lb_payload(["10.0.0.11:5001"], LB_IMAGE)
    second = lb.lb_payload(["10.0.0.11:5001", "10.0.0.12:5001"], LB_IMAGE)
    assert node.run(content_for(first)).returncode == 0
    inodes = {path: node.path(path).stat().st_ino for path in (CONF, MANIFEST)}
    proc = node.run(content_for(second))
    assert proc.returncode == 0, proc.stderr
    assert node.read(CONF) == second["files"]["nginx.conf"]
    assert node.read(MANIFEST) == second["files"]["registry-proxy.yaml"]
    assert all(node.path(path).stat().st_ino != inode for path, inode in inodes.items())
    assert node.calls("crictl") == [["pull", LB_IMAGE]]


def test_failed_pull_is_logged_not_fatal(scenarios, make_node):
    node = make_node("worker-0")
    node.fail(crictl_pull="always")
    proc = node.run(scenarios["proxy"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert "crictl pull of the LB image failed" in proc.stderr
    assert node.path(MANIFEST).exists()


def test_empty_endpoints_remove_what_the_step_installed(scenarios, make_node):
    node = make_node("worker-0")
    node.write("etc/kubernetes/manifests/kube-apiserver.yaml", "kind: Pod\n")
    assert node.run(scenarios["proxy"].content(NGC)).returncode == 0
    proc = node.run(scenarios["legacy"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert not node.path(MANIFEST).exists()
    assert not node.path("etc/kubernetes/registry-proxy").exists()
    assert node.read("etc/kubernetes/manifests/kube-apiserver.yaml") == "kind: Pod\n"
    # and again: nothing left to do
    before = node.snapshot()
    assert node.run(scenarios["legacy"].content(NGC)).returncode == 0
    assert node.snapshot() == before


def test_removal_needs_the_markers(scenarios, make_node):
    node = make_node("worker-0")
    node.write(MANIFEST, "apiVersion: v1\nkind: Pod\n")
    node.write(CONF, "user config\n")
    before = node.snapshot()
    proc = node.run(scenarios["legacy"].content(NGC))
    assert proc.returncode == 0
    assert node.snapshot() == before
    assert "does not carry" in proc.stderr


def test_without_an_image_only_the_config_is_written(make_node):
    payload = lb.lb_payload(["10.0.0.11:5001"], "")
    assert "registry-proxy.yaml" not in payload["files"]
    node = make_node("worker-0")
    proc = node.run(content_for(payload))
    assert proc.returncode == 0, proc.stderr
    assert node.path(CONF).exists() and not node.path(MANIFEST).exists()
    assert node.calls("crictl") == []


def hostile(**overrides) -> dict:
    payload = lb.lb_payload(["10.0.0.11:5001"], LB_IMAGE)
    payload.pop("version")
    payload.update(overrides)
    payload["version"] = version_of(payload)
    return payload


HOSTILE = {
    "endpoint with a command": hostile(endpoints=["10.0.0.1:5001; touch pwned"]),
    "endpoint on another port": hostile(endpoints=["10.0.0.1:80"]),
    "endpoint out of range": hostile(endpoints=["999.0.0.1:5001"]),
    "endpoint with newline": hostile(endpoints=["10.0.0.1:5001\n10.0.0.2:5001"]),
    "endpoint not a string": hostile(endpoints=[5001]),
    "image as an option": hostile(image="--help"),
    "image with substitution": hostile(image="$(touch pwned)"),
    "image with space": hostile(image="a b"),
    "no nginx.conf": hostile(files={}),
    "endpoints not a list": hostile(endpoints="10.0.0.1:5001"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_payload_fails_before_any_write(scenarios, make_node, case):
    node = make_node("worker-0")
    assert node.run(scenarios["proxy"].content(NGC)).returncode == 0
    before = node.snapshot()
    proc = node.run(content_for(HOSTILE[case]))
    assert proc.returncode == 1, proc.stderr
    assert node.snapshot() == before
    assert node.mutating_calls() == []
    assert not list(node.base.rglob("pwned"))


def test_a_foreign_manifest_keeps_the_config_dir(scenarios, make_node):
    node = make_node("worker-0")
    assert node.run(scenarios["proxy"].content(NGC)).returncode == 0
    node.write(MANIFEST, "apiVersion: v1\nkind: Pod\n")
    before = node.snapshot()
    proc = node.run(scenarios["legacy"].content(NGC))
    assert proc.returncode == 0
    assert node.snapshot() == before
