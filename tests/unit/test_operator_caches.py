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
"""The operator emulation remembers what it already checked or rendered, keyed by the input's content:
a changed input is checked (or rendered) again, a refusal is never remembered, and every caller gets a
copy of its own, so nothing a caller changes leaks into the next answer."""

from __future__ import annotations

import json
import os

import pytest
from d8registry import helm
from d8registry.operator import bindings, protocol
from d8registry.operator.module import ModuleHarness
from d8registry.operator.values_rules import (
    ValuesPatchError,
    ValuesValidationError,
    apply_patch,
    validate_module_values,
)


def _ready(value) -> dict:
    return {"internal": {"orchestrator": {"ready": value}}}


def test_an_invalid_values_change_is_refused_after_a_valid_one_was_accepted(repo_root):
    openapi = repo_root / "openapi"
    assert validate_module_values(openapi, _ready(True))["internal"]["orchestrator"]["ready"] is True
    for _ in range(2):   # refused every time: a refusal is not remembered as an answer
        with pytest.raises(ValuesValidationError, match="registry.internal.orchestrator.ready"):
            validate_module_values(openapi, _ready("yes"))
    assert validate_module_values(openapi, _ready(True)) == validate_module_values(openapi, _ready(True))
    with pytest.raises(ValuesValidationError, match="ready"):
        validate_module_values(openapi, _ready("yes"))


def test_values_equal_as_json_text_but_not_as_data_are_validated_on_their_own(repo_root):
    openapi = repo_root / "openapi"
    assert validate_module_values(openapi, {"whitelistSourceRanges": ["10.0.0.0/8"]})["whitelistSourceRanges"] == [
        "10.0.0.0/8"]
    # a tuple prints as the same JSON list, but it is not a JSON array: it must not pass as the list did
    with pytest.raises(ValuesValidationError, match="whitelistSourceRanges"):
        validate_module_values(openapi, {"whitelistSourceRanges": ("10.0.0.0/8",)})


def test_validated_values_are_the_callers_own_copy(repo_root):
    openapi = repo_root / "openapi"
    first = validate_module_values(openapi, _ready(False))
    expected = json.loads(json.dumps(first))
    first["internal"]["orchestrator"]["ready"] = "changed by the caller"
    first["internal"]["extra"] = {}
    assert validate_module_values(openapi, _ready(False)) == expected


def _write_hook(path, config: dict, body: str = "pass") -> None:
    path.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        "from lib import runner\n"
        f"CONFIG = {json.dumps(config)!r}\n"
        "def main(ctx):\n"
        f"    {body}\n"
        "if __name__ == '__main__':\n"
        "    runner.run(main, json.loads(CONFIG))\n",
        encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def module(tmp_path, repo_root):
    root = tmp_path / "module"
    (root / "hooks").mkdir(parents=True)
    os.symlink(repo_root / "openapi", root / "openapi")
    os.symlink(repo_root / "hooks" / "lib", root / "hooks" / "lib")
    return root


def test_a_changed_hook_config_is_asked_for_and_validated_again(module):
    hook = module / "hooks" / "probe.py"
    good = {"configVersion": "v1", "beforeHelm": 10}
    _write_hook(hook, good)
    assert protocol.hook_config(hook) == good
    _write_hook(hook, {"configVersion": "v1", "beforeHelm": "soon"})
    for _ in range(2):
        with pytest.raises(protocol.HookConfigError, match="probe.py: invalid hook config"):
            protocol.hook_config(hook)
    _write_hook(hook, {"configVersion": "v1", "beforeHelm": 20})   # same size as the first, other content
    assert protocol.hook_config(hook) == {"configVersion": "v1", "beforeHelm": 20}
    mine = protocol.hook_config(hook)
    mine["beforeHelm"] = 1
    mine["afterHelm"] = 1
    assert protocol.hook_config(hook) == {"configVersion": "v1", "beforeHelm": 20}


def test_a_changed_hook_runs_its_new_code(module):
    hook = module / "hooks" / "probe.py"
    config = {"configVersion": "v1", "beforeHelm": 10}
    _write_hook(hook, config, "ctx.values['registry']['internal']['orchestrator']['hash'] = 'aaaa'")
    harness = ModuleHarness(module, in_process=True)
    harness.before_helm()
    assert harness.module_values["internal"]["orchestrator"]["hash"] == "aaaa"
    # the same length, so only the content tells the versions apart
    _write_hook(hook, config, "ctx.values['registry']['internal']['orchestrator']['hash'] = 'bbbb'")
    harness.before_helm()
    assert harness.module_values["internal"]["orchestrator"]["hash"] == "bbbb"


def _chart(root, template: str) -> None:
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: registry\nversion: 0.1.0\n", encoding="utf-8")
    (root / "templates" / "cm.yaml").write_text(template, encoding="utf-8")


CONFIG_MAP = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n"
              "  value: {{ .Values.value | quote }}\n  side: {{ SIDE }}\n")


def test_a_changed_chart_or_values_are_rendered_again(tmp_path, helm_bin, monkeypatch):
    monkeypatch.setenv("D8REGISTRY_HELM", helm_bin)
    chart = tmp_path / "chart"
    _chart(chart, CONFIG_MAP.replace("{{ SIDE }}", '"left"'))
    assert helm.render(chart, {"value": "a"})[0]["data"] == {"value": "a", "side": "left"}
    assert helm.render(chart, {"value": "b"})[0]["data"] == {"value": "b", "side": "left"}
    _chart(chart, CONFIG_MAP.replace("{{ SIDE }}", '"rght"'))   # the same size, other content
    assert helm.render(chart, {"value": "a"})[0]["data"] == {"value": "a", "side": "rght"}
    # a file helm reads besides the templates (here through .Files) is part of the chart too
    (chart / "extra.txt").write_text("one", encoding="utf-8")
    _chart(chart, CONFIG_MAP.replace("{{ SIDE }}", '{{ .Files.Get "extra.txt" | quote }}'))
    assert helm.render(chart, {"value": "a"})[0]["data"]["side"] == "one"
    (chart / "extra.txt").write_text("two", encoding="utf-8")
    assert helm.render(chart, {"value": "a"})[0]["data"]["side"] == "two"


def test_rendered_objects_are_the_callers_own_copy_and_failures_repeat(tmp_path, helm_bin, monkeypatch):
    monkeypatch.setenv("D8REGISTRY_HELM", helm_bin)
    chart = tmp_path / "chart"
    _chart(chart, CONFIG_MAP.replace("{{ SIDE }}", '"left"'))
    first = helm.render(chart, {"value": "a"})
    first[0]["data"]["value"] = "changed by the caller"
    assert helm.render(chart, {"value": "a"})[0]["data"] == {"value": "a", "side": "left"}
    _chart(chart, CONFIG_MAP.replace("{{ SIDE }}", "{{ required \"side is required\" .Values.side }}"))
    for _ in range(2):
        with pytest.raises(helm.HelmError, match="side is required"):
            helm.render(chart, {"value": "a"})
    assert helm.render(chart, {"value": "a", "side": "up"})[0]["data"] == {"value": "a", "side": "up"}


def test_a_jq_filter_sees_each_new_object_content_and_callers_get_their_own_result():
    node = {"kind": "Node", "metadata": {"name": "worker-0", "labels": {"group": "a"}}}
    assert bindings.apply_jq_filter(".metadata", node) == {"name": "worker-0", "labels": {"group": "a"}}
    mine = bindings.apply_jq_filter(".metadata", node)
    mine["labels"]["group"] = "changed by the caller"
    assert bindings.apply_jq_filter(".metadata.labels.group", node) == "a"
    assert bindings.apply_jq_filter(".metadata", node) == {"name": "worker-0", "labels": {"group": "a"}}
    node["metadata"]["labels"]["group"] = "b"
    assert bindings.apply_jq_filter(".metadata.labels.group", node) == "b"


def test_a_jq_filter_that_reads_the_environment_runs_every_time(monkeypatch):
    monkeypatch.setenv("D8REGISTRY_PROBE", "one")
    assert bindings.apply_jq_filter("env.D8REGISTRY_PROBE", {}) == "one"
    monkeypatch.setenv("D8REGISTRY_PROBE", "two")
    assert bindings.apply_jq_filter("env.D8REGISTRY_PROBE", {}) == "two"


def test_a_values_patch_never_changes_the_values_it_is_applied_to():
    values = {"global": {"modules": {"https": {}}}, "registry": {"internal": {"orchestrator": {"hash": "a"}}}}
    before = json.loads(json.dumps(values))
    patched = apply_patch(values, [{"op": "add", "path": "/registry/internal/orchestrator/ready", "value": True}])
    assert patched["registry"]["internal"]["orchestrator"] == {"hash": "a", "ready": True}
    patched["registry"]["internal"]["orchestrator"]["hash"] = "changed"
    patched["global"]["modules"]["https"]["mode"] = "changed"
    unpatched = apply_patch(values, [])
    unpatched["registry"]["internal"]["orchestrator"]["hash"] = "changed"
    with pytest.raises(ValuesPatchError, match="does not apply strictly"):   # the first operation applies, the second not
        apply_patch(values, [{"op": "add", "path": "/registry/internal/orchestrator/ready", "value": True},
                             {"op": "remove", "path": "/registry/internal/missing"}])
    assert values == before


def test_configs_asked_together_are_each_validated(module):
    hooks = [module / "hooks" / f"probe_{i}.py" for i in range(3)]
    for i, hook in enumerate(hooks):
        _write_hook(hook, {"configVersion": "v1", "beforeHelm": i})
    assert protocol.hook_configs(hooks) == {hook: {"configVersion": "v1", "beforeHelm": i}
                                            for i, hook in enumerate(hooks)}
    _write_hook(hooks[1], {"configVersion": "v1", "beforeHelm": "soon"})
    with pytest.raises(protocol.HookConfigError, match="probe_1.py: invalid hook config"):
        protocol.hook_configs(hooks)
    hooks[2].write_text("#!/usr/bin/env python3\nimport sys\nsys.exit(3)\n", encoding="utf-8")
    _write_hook(hooks[1], {"configVersion": "v1", "beforeHelm": 1})
    with pytest.raises(protocol.HookConfigError, match="probe_2.py --config exited 3"):
        protocol.hook_configs(hooks)
