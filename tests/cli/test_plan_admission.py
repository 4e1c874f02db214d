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
"""`plan` says up front whether `kubectl apply` would be refused, with the admission policy's message
(SPEC 3.7). The same messages are checked against a real API server in tests/apiserver."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from d8registry import cluster as cluster_mod
from lib import messages

REFUSED = "  refused by kubectl apply: "


def _plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "d8registry", "plan", *args], capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)


def _cluster_file(tmp_path, **globals_) -> str:
    document = yaml.safe_load(cluster_mod.DEFAULT_CLUSTER.read_text())
    for dotted, value in globals_.items():
        node = document["globals"]
        *parents, leaf = dotted.split("__")
        for name in parents:
            node = node[name]
        node[leaf] = value
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_bootstrap_freeze_is_reported_as_the_refusal(helm_bin, tmp_path):
    proc = _plan("--cluster", _cluster_file(tmp_path, clusterIsBootstrapped=False), "--set", "mode=Direct")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"{REFUSED}{messages.ADMISSION_BOOTSTRAP}\n" in proc.stdout
    assert "Stages:" not in proc.stdout


def test_static_only_modes_on_a_cloud_cluster(helm_bin, tmp_path):
    proc = _plan("--cluster", _cluster_file(tmp_path, clusterConfiguration__clusterType="Cloud"),
                 "--set", "mode=Proxy")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{REFUSED}{messages.ADMISSION_STATIC}\n" in proc.stdout
    assert "  - registry.mode: mode 'Proxy' is supported only in static clusters (clusterType is 'Cloud')." \
        in proc.stdout, "the module's own reason follows"


@pytest.mark.parametrize(("request_", "message"), [
    pytest.param("mode=Proxy,proxy.ttl=1m", "registry.proxy: 'ttl' should be at least 5 minutes.",
                 marks=pytest.mark.xdist_group("cli-plan-proxy-ttl")),   # the run test_main_job.py also makes
    ("mode=Direct,direct.username=u", "registry.direct: 'password' is required when 'username' is provided."),
])
def test_cross_field_rule_is_the_refusal(helm_bin, cli_once, request_, message):
    proc = cli_once("plan", "--set", request_).proc
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{REFUSED}{message}\n" in proc.stdout


def test_module_only_rules_pass_admission_but_are_reported(helm_bin):
    proc = _plan("--set", "mode=Direct,direct.imagesRepo=registry.example.com/Deckhouse")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert REFUSED not in proc.stdout
    assert "accepted by kubectl apply, but the module refuses the settings (InvalidConfiguration):" in proc.stdout
    assert "repository path must be lowercase" in proc.stdout


@pytest.mark.xdist_group("cli-simulate-local")   # the run test_main_job.py also makes (cli_once, conftest.py)
def test_local_to_proxy_from_a_dump(helm_bin, cli_once, tmp_path):
    local = cli_once("simulate", "--in-process", "--json", "--set", "mode=Local", dump=True)
    assert local.proc.returncode == 0, local.proc.stdout[-3000:] + local.proc.stderr[-3000:]
    dump = tmp_path / "local.yaml"
    dump.write_bytes(local.dump.read_bytes())
    # after Local the current upstream is the fixed address itself, so name a real one
    proc = _plan("--cluster", str(dump), "--set", "mode=Proxy,proxy.imagesRepo=mirror.example.com/deckhouse/ee")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"{REFUSED}{messages.ADMISSION_LOCAL_PROXY}\n" in proc.stdout
    proc = _plan("--cluster", str(dump), "--set", "mode=Legacy")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"{REFUSED}{messages.ADMISSION_LEGACY_FROM_LOCAL}\n" in proc.stdout
