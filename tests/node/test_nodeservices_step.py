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
"""d8-registry-nodeservices.sh run in temp master roots (SPEC 5.13, 6.6) against Secrets the chart renders."""

from __future__ import annotations

import base64
import copy

import pytest

from .conftest import MARKER, mode

NGC = "d8-registry-nodeservices.sh"
REG = "etc/kubernetes/registry"
MANIFEST = "etc/kubernetes/manifests/registry-nodeservices.yaml"
PROXY_DATA = "opt/deckhouse/registry/proxy_data"
LOCAL_DATA = "opt/deckhouse/registry/local_data"
OWNER = "64535:64535"
PATHS = {
    "ca.crt": ("pki/ca.crt", 0o640), "front.crt": ("pki/front.crt", 0o640),
    "upstream-ca.crt": ("pki/upstream-ca.crt", 0o640), "front.key": ("pki/front.key", 0o600),
    "nginx.conf": ("front/nginx.conf", 0o640), "htpasswd": ("front/htpasswd", 0o600),
    "config.yaml": ("distribution/config.yaml", 0o600), "regsync.yaml": ("sync/regsync.yaml", 0o600),
}


def decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def with_data(secret: dict, **changes) -> dict:
    """A copy of the Secret with keys replaced (text) or removed (None)."""
    out = copy.deepcopy(secret)
    for key, value in changes.items():
        if value is None:
            out["data"].pop(key, None)
        else:
            out["data"][key] = base64.b64encode(value.encode()).decode()
    return out


def master(make_node, rendered, name="master-1", secret=None):
    node = make_node(name).with_admin()
    objects = node.kube_objects
    secret = secret if secret is not None else rendered.secret(f"registry-node-config-{name}")
    if secret:
        objects.append(secret)
    node.kube_objects = objects
    return node


def set_secret(node, secret):
    node.kube_objects = [o for o in node.kube_objects if o["kind"] != "Secret"] + ([secret] if secret else [])


def test_first_run_installs_the_node_services_and_the_second_changes_nothing(scenarios, make_node):
    rendered = scenarios["proxy"]
    secret = rendered.secret("registry-node-config-master-1")
    data = decoded(secret)
    assert {"registry-nodeservices.yaml", "images", "restart_delay_seconds"} <= set(data)
    node = master(make_node, rendered)
    content = rendered.content(NGC)

    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert node.calls("kubectl") == [["--kubeconfig", str(node.path("etc/kubernetes/admin.conf")), "-n", "d8-system",
                                      "get", "secret", "registry-node-config-master-1", "--ignore-not-found", "-o",
                                      "json"]]
    for key, (relative, wanted_mode) in PATHS.items():
        path = node.path(f"{REG}/{relative}")
        if key in data:
            assert path.read_text() == data[key], key
            assert mode(path) == wanted_mode, key
        else:
            assert not path.exists(), key
    assert node.read(MANIFEST) == data["registry-nodeservices.yaml"]
    assert mode(node.path(MANIFEST)) == 0o600
    assert mode(node.path(REG)) == 0o750 and mode(node.path(f"{REG}/pki")) == 0o700
    assert mode(node.path(PROXY_DATA)) == 0o700 and not node.path(LOCAL_DATA).exists()

    chowns = node.calls("chown")
    assert {argv[0] for argv in chowns} == {OWNER}
    chowned = {argv[1].removeprefix(str(node.root) + "/") for argv in chowns}
    assert {REG, f"{REG}/pki", f"{REG}/front", f"{REG}/distribution", PROXY_DATA} <= chowned
    # files are chowned as temp files before the rename: one chown per written file
    assert len([a for a in chowns if "/.d8reg." in a[1]]) == len([k for k in PATHS if k in data]) + 1

    images = [line for line in data["images"].splitlines() if line]
    order = [(r[0], r[1]) for r in [(t, a) for t, a in node.mutating_calls()] if r[0] in ("crictl", "sleep")]
    assert order == [("crictl", ["pull", ref]) for ref in images] + [("sleep", [data["restart_delay_seconds"]])]
    assert data["restart_delay_seconds"] == "20", "master-1 is second in IP order"
    assert node.temp_files() == []

    before = node.snapshot()
    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert node.snapshot() == before
    assert node.mutating_calls() == []


def test_local_master_gets_regsync_and_local_data_and_loses_what_the_secret_drops(scenarios, make_node):
    rendered = scenarios["local"]
    secret = rendered.secret("registry-node-config-master-0")
    data = decoded(secret)
    assert "regsync.yaml" in data
    node = master(make_node, rendered, "master-0")
    content = rendered.content(NGC)
    assert node.run(content).returncode == 0
    assert node.read(f"{REG}/sync/regsync.yaml") == data["regsync.yaml"]
    assert mode(node.path(LOCAL_DATA)) == 0o700 and not node.path(PROXY_DATA).exists()
    node.write(f"{LOCAL_DATA}/docker/registry/v2/blob", "data")

    set_secret(node, with_data(secret, **{"regsync.yaml": None}))
    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert not node.path(f"{REG}/sync/regsync.yaml").exists()
    assert node.read(f"{REG}/front/htpasswd") == data["htpasswd"]
    assert node.read(f"{LOCAL_DATA}/docker/registry/v2/blob") == "data"


def test_absent_secret_cleans_up_everything_but_local_data(scenarios, make_node):
    rendered = scenarios["proxy"]
    node = master(make_node, rendered)
    content = rendered.content(NGC)
    assert node.run(content).returncode == 0
    node.write(f"{PROXY_DATA}/docker/cached", "cache")
    node.write(f"{LOCAL_DATA}/docker/pushed", "precious")
    node.write("etc/kubernetes/manifests/kube-apiserver.yaml", "kind: Pod\n")
    set_secret(node, None)
    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert not node.path(MANIFEST).exists()
    assert not node.path(REG).exists()
    assert not node.path(PROXY_DATA).exists()
    assert node.read(f"{LOCAL_DATA}/docker/pushed") == "precious"
    assert node.read("etc/kubernetes/manifests/kube-apiserver.yaml") == "kind: Pod\n"
    before = node.snapshot()
    assert node.run(content).returncode == 0
    assert node.snapshot() == before


def test_cleanup_needs_the_markers(scenarios, make_node):
    node = master(make_node, scenarios["proxy"], secret={})
    node.write(MANIFEST, "apiVersion: v1\nkind: Pod\n")
    node.write(f"{REG}/pki/ca.crt", "someone else's\n")
    node.write(f"{PROXY_DATA}/x", "someone else's\n")
    before = node.snapshot()
    proc = node.run(scenarios["proxy"].content(NGC))
    assert proc.returncode == 0
    assert node.snapshot() == before


def test_api_error_is_not_absence(scenarios, make_node):
    rendered = scenarios["proxy"]
    node = master(make_node, rendered)
    assert node.run(rendered.content(NGC)).returncode == 0
    before = node.snapshot()
    node.fail(kubectl_get="always")
    proc = node.run(rendered.content(NGC))
    assert proc.returncode == 1
    assert "cannot read Secret d8-system/registry-node-config-master-1" in proc.stderr
    assert node.snapshot() == before


def test_failed_pull_keeps_the_running_pod(scenarios, make_node):
    rendered = scenarios["proxy"]
    secret = rendered.secret("registry-node-config-master-1")
    node = master(make_node, rendered)
    assert node.run(rendered.content(NGC)).returncode == 0
    old_manifest = node.read(MANIFEST)
    changed = decoded(secret)["registry-nodeservices.yaml"].replace("cpu: 10m", "cpu: 20m", 1)
    set_secret(node, with_data(secret, **{"registry-nodeservices.yaml": changed}))
    node.fail(crictl_pull="always")
    proc = node.run(rendered.content(NGC))
    assert proc.returncode == 1
    assert node.read(MANIFEST) == old_manifest
    assert node.calls("sleep") == []
    node.fail()
    assert node.run(rendered.content(NGC)).returncode == 0
    assert node.read(MANIFEST) == changed


def test_manifest_without_marker_gets_one(scenarios, make_node):
    rendered = scenarios["proxy"]
    secret = rendered.secret("registry-node-config-master-1")
    bare = decoded(secret)["registry-nodeservices.yaml"].removeprefix(MARKER + "\n")
    node = master(make_node, rendered, secret=with_data(secret, **{"registry-nodeservices.yaml": bare}))
    assert node.run(rendered.content(NGC)).returncode == 0
    assert node.read(MANIFEST) == f"{MARKER}\n{bare}"
    before = node.snapshot()
    assert node.run(rendered.content(NGC)).returncode == 0
    assert node.snapshot() == before


def test_unknown_keys_are_ignored(scenarios, make_node):
    rendered = scenarios["proxy"]
    secret = with_data(rendered.secret("registry-node-config-master-1"), **{"../../../etc/passwd": "x", "evil": "y"})
    node = master(make_node, rendered, secret=secret)
    assert node.run(rendered.content(NGC)).returncode == 0
    assert not node.path("etc/passwd").exists()
    assert not any(p.name in ("evil", "passwd") for p in node.root.rglob("*"))


def test_without_admin_conf_nothing_happens(scenarios, make_node):
    node = make_node("master-1")
    proc = node.run(scenarios["proxy"].content(NGC))
    assert proc.returncode == 0
    assert node.calls() == []
    assert sorted(str(p.relative_to(node.root)) for p in node.root.rglob("*") if p.is_file()) == [
        "var/lib/bashible/discovered-node-name"]


HOSTILE = {
    "image as an option": {"images": "--all\n"},
    "image with substitution": {"images": "$(touch pwned)\n"},
    "delay with a command": {"restart_delay_seconds": "1; touch pwned"},
    "delay too long": {"restart_delay_seconds": "99999"},
    "version not a digest": {"version": "latest"},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_secret_values_fail_before_any_write(scenarios, make_node, case):
    rendered = scenarios["proxy"]
    node = master(make_node, rendered,
                  secret=with_data(rendered.secret("registry-node-config-master-1"), **HOSTILE[case]))
    before = node.snapshot()
    proc = node.run(rendered.content(NGC))
    assert proc.returncode == 1, proc.stderr
    assert node.snapshot() == before
    assert node.mutating_calls() == []
    assert not list(node.base.rglob("pwned"))


def test_data_that_is_not_base64_fails(scenarios, make_node):
    rendered = scenarios["proxy"]
    secret = copy.deepcopy(rendered.secret("registry-node-config-master-1"))
    secret["data"]["ca.crt"] = "not base64 $(touch pwned)"
    node = master(make_node, rendered, secret=secret)
    before = node.snapshot()
    proc = node.run(rendered.content(NGC))
    assert proc.returncode == 1
    assert node.snapshot() == before
    # the right alphabet but broken padding: caught before the first file is written too
    secret["data"]["ca.crt"] = "QUJD="
    secret["data"]["front.key"] = "QUJD"
    node = master(make_node, rendered, secret=secret)
    before = node.snapshot()
    proc = node.run(rendered.content(NGC))
    assert proc.returncode == 1 and "is not valid base64" in proc.stderr
    assert node.snapshot() == before


@pytest.mark.parametrize("name", ["../master-1", "Master-1", ""])
def test_hostile_node_name_fails_before_any_call(scenarios, make_node, name):
    node = master(make_node, scenarios["proxy"])
    node.write("var/lib/bashible/discovered-node-name", name)
    before = node.snapshot()
    proc = node.run(scenarios["proxy"].content(NGC))
    assert proc.returncode == 1
    assert node.snapshot() == before
    assert node.calls() == []


def test_a_traced_run_keeps_secret_values_out_of_the_log(scenarios, make_node):
    rendered = scenarios["proxy"]
    data = decoded(rendered.secret("registry-node-config-master-1"))
    node = master(make_node, rendered)
    proc = node.run(rendered.content(NGC), trace=True)
    assert proc.returncode == 0, proc.stderr
    assert "+ set +x" in proc.stderr, "the trace was on until the body switched it off"
    for key in ("front.key", "htpasswd", "config.yaml"):
        for line in data[key].splitlines():
            if len(line) > 16:
                assert line not in proc.stderr, key
