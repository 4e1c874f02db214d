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
"""The main job driven as a user would: a subprocess, its exit code and what it prints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "d8registry", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_default_run_on_the_example_cluster(helm_bin):
    proc = _cli()
    assert proc.returncode == 0, proc.stderr
    assert "Mode: Unmanaged -> Unmanaged (non-configurable)" in proc.stdout
    assert any(line.split()[:2] == ["Ready", "True"] for line in proc.stdout.splitlines())
    assert "Secret d8-system/registry-state" in proc.stdout
    assert "==> helm template (Helm v3 CLI)" in proc.stderr


def test_settings_are_applied_and_secrets_redacted(helm_bin):
    proc = _cli("--set", "mode=Direct", "--set", "direct.imagesRepo=registry.example.com/deckhouse/ee",
                "--set", "direct.license=very-secret-license", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    state = report["values"]["registry"]["internal"]["orchestrator"]["state"]
    assert state["target_mode"] == "Direct"
    assert "very-secret-license" not in proc.stdout + proc.stderr
    assert state["params"]["target"]["password"].startswith("<redacted sha256:")
    kinds = {(o["kind"], o["metadata"]["name"]) for o in report["objects"]}
    assert ("Secret", "registry-private-state") in kinds


def test_show_secrets_prints_them(helm_bin):
    proc = _cli("--set", "mode=Direct", "--set", "direct.imagesRepo=r.example.com/d8/ee",
                "--set", "direct.license=visible-license", "--json", "--show-secrets")
    assert proc.returncode == 0, proc.stderr
    assert "visible-license" in proc.stdout


def test_invalid_settings_are_reported_not_crashed(helm_bin):
    proc = _cli("--set", "mode=Proxy")
    assert proc.returncode == 0, proc.stderr
    assert "InvalidConfiguration" in proc.stdout
    assert "Mode: Unmanaged -> Unmanaged (non-configurable)" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "/nonexistent/cluster.yaml"], "cannot read cluster file"),
        (["--set", "mode"], "--set expects key=value"),
        (["--settings", "/nonexistent/settings.yaml"], "cannot read settings file"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_yaml_cluster(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text("objects: [unclosed\n")
    proc = _cli("--cluster", str(bad))
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
