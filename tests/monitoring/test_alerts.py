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
"""The module's alerts under Prometheus' own rule engine: `promtool check rules` and `promtool test rules`.

The rules are taken from the chart as Helm renders it (the PrometheusRule objects of templates/monitoring.yaml),
so what is tested is what Prometheus loads. Every alert has a file tests/monitoring/<alert>.yaml with cases
where it fires and cases where it stays silent. The unit tests compare the `summary` annotation only (it tells
the two D8RegistrySwitchStuck rules apart); the long descriptions are checked by `promtool check rules`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from d8registry import helm

from ..templates.schema_values import module_values

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def promtool() -> str:
    path = REPO / ".tools" / "bin" / "promtool"
    if not path.exists():
        pytest.fail("promtool is missing: run `make tools` (the README's commands do it)")
    return str(path)


@pytest.fixture(scope="module")
def groups(helm_bin) -> list[dict]:
    rules = [obj for obj in helm.render(REPO, module_values(REPO)) if obj["kind"] == "PrometheusRule"]
    assert rules, "the chart renders no PrometheusRule"
    return [group for obj in rules for group in obj["spec"]["groups"]]


def _alerts(groups: list[dict]) -> set[str]:
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def _case_files() -> list[Path]:
    return sorted(CASES.glob("D8*.yaml"))


def test_promtool_accepts_the_rendered_rules(groups, promtool, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_its_test_file(groups):
    assert _alerts(groups) == {path.stem for path in _case_files()}


@pytest.mark.parametrize("case", _case_files(), ids=lambda path: path.stem)
def test_alert_fires_when_it_should_and_only_then(case, groups, promtool, tmp_path):
    alert = case.stem
    spec = yaml.safe_load(case.read_text())
    checks = [c for test in spec["tests"] for c in test.get("alert_rule_test", [])]
    assert checks and {c["alertname"] for c in checks} == {alert}, "a file tests only the alert it is named after"
    assert any(c.get("exp_alerts") for c in checks), "no case where the alert fires"
    assert any(not c.get("exp_alerts") for c in checks), "no case where the alert stays silent"

    trimmed = [{**group, "rules": [{**rule, "annotations": {"summary": rule["annotations"]["summary"]}}
                                   for rule in group["rules"]]} for group in groups]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": trimmed}, sort_keys=False))
    shutil.copy(case, tmp_path / case.name)
    proc = subprocess.run([promtool, "test", "rules", case.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
