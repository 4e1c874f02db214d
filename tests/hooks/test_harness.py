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
"""The harness must catch the mistakes addon-operator would catch (or that would hurt in a cluster).

Each case builds a throw-away module next to the real one: same openapi schemas, same hooks/lib,
one deliberately wrong hook, run through the real file protocol in a subprocess.
"""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from d8registry.operator import bindings, protocol
from d8registry.operator.module import ModuleHarness, NotConverged
from d8registry.operator.values_rules import ValuesPatchError, ValuesValidationError

GOOD_CONFIG = {"configVersion": "v1", "beforeHelm": 1}


def _module_with_hook(tmp_path, repo_root, body: str, config: dict | None = None):
    module = tmp_path / "module"
    (module / "hooks").mkdir(parents=True)
    os.symlink(repo_root / "openapi", module / "openapi")
    os.symlink(repo_root / "hooks" / "lib", module / "hooks" / "lib")
    hook = module / "hooks" / "probe.py"
    hook.write_text(
        "#!/usr/bin/env python3\n"
        "from lib import runner\n"
        "from lib.values import set_path\n"
        f"CONFIG = json_config = {json.dumps(config or GOOD_CONFIG)!r}\n"
        "import json\n"
        "def main(ctx):\n" + textwrap.indent(textwrap.dedent(body), "    ") + "\n"
        "if __name__ == '__main__':\n"
        "    runner.run(main, json.loads(CONFIG))\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return module, hook


def test_patch_outside_module_section_is_refused(tmp_path, repo_root):
    module, hook = _module_with_hook(tmp_path, repo_root, "ctx.values.setdefault('global', {})['leak'] = 1")
    harness = ModuleHarness(module)
    with pytest.raises(ValuesPatchError, match="outside '/registry/'"):
        harness.before_helm()


def test_replace_operation_is_refused(tmp_path, repo_root):
    body = "ctx.values_patches.collect({'op': 'replace', 'path': '/registry/internal/orchestrator/hash', 'value': 'x'})"
    module, hook = _module_with_hook(tmp_path, repo_root, body)
    with pytest.raises(ValuesPatchError, match="'replace'"):
        ModuleHarness(module).before_helm()


def test_removing_a_missing_path_is_refused(tmp_path, repo_root):
    body = "ctx.values_patches.collect({'op': 'remove', 'path': '/registry/internal/orchestrator/hash'})"
    module, hook = _module_with_hook(tmp_path, repo_root, body)
    with pytest.raises(ValuesPatchError, match="strictly"):
        ModuleHarness(module).before_helm()


def test_value_not_declared_in_openapi_is_refused(tmp_path, repo_root):
    module, hook = _module_with_hook(tmp_path, repo_root, "set_path(ctx.values, 'registry.internal.undeclared', 'x')")
    with pytest.raises(ValuesValidationError, match="undeclared"):
        ModuleHarness(module).before_helm()


def test_value_of_wrong_type_is_refused(tmp_path, repo_root):
    module, hook = _module_with_hook(tmp_path, repo_root, "set_path(ctx.values, 'registry.internal.orchestrator.ready', 'yes')")
    with pytest.raises(ValuesValidationError, match="orchestrator.ready"):
        ModuleHarness(module).before_helm()


def test_declared_value_is_accepted_and_defaults_are_filled(tmp_path, repo_root):
    module, hook = _module_with_hook(tmp_path, repo_root, "set_path(ctx.values, 'registry.internal.orchestrator.hash', 'abc')")
    harness = ModuleHarness(module)
    harness.before_helm()
    assert harness.module_values["internal"]["orchestrator"]["hash"] == "abc"
    # defaults of openapi/values.yaml are materialised as addon-operator does
    assert harness.module_values["internal"]["checker"]["initialized"] is False
    harness.assert_converged(hook)


def test_non_converging_hook_is_caught(tmp_path, repo_root):
    body = "import secrets\nset_path(ctx.values, 'registry.internal.orchestrator.hash', secrets.token_hex(8))"
    module, hook = _module_with_hook(tmp_path, repo_root, body)
    harness = ModuleHarness(module)
    harness.before_helm()
    with pytest.raises(NotConverged, match="probe.py"):
        harness.assert_converged(hook)


def test_misspelled_hook_config_field_is_refused(tmp_path, repo_root):
    config = {
        "configVersion": "v1",
        "kubernetes": [{"name": "x", "apiVersion": "v1", "kind": "Secret", "jqFIlter": ".data"}],
    }
    module, hook = _module_with_hook(tmp_path, repo_root, "pass", config)
    with pytest.raises(protocol.HookConfigError, match="jqFIlter"):
        ModuleHarness(module).before_helm()


def test_hook_failure_is_reported_with_its_error(tmp_path, repo_root):
    module, hook = _module_with_hook(tmp_path, repo_root, "raise RuntimeError('boom from the hook')")
    with pytest.raises(protocol.HookFailed, match="boom from the hook"):
        ModuleHarness(module).before_helm()


def test_values_are_chained_across_binding_contexts(tmp_path, repo_root):
    """With two contexts the second must see what the first wrote (the bare SDK would not)."""
    body = """
    from lib.values import get_path
    count = get_path(ctx.values, 'registry.internal.checker.state.queues.probe.processed', 0)
    set_path(ctx.values, 'registry.internal.checker.state.queues.probe.processed', count + 1)
    """
    module, hook = _module_with_hook(tmp_path, repo_root, body)
    harness = ModuleHarness(module)
    result = harness.run(hook, [{"binding": "a"}, {"binding": "b"}])
    assert harness.module_values["internal"]["checker"]["state"]["queues"]["probe"]["processed"] == 2
    assert len(result.values_patch) == 1, "one diff for the whole run, not one per context"


def test_jq_filter_is_really_applied(repo_root, example_cluster):
    """The orchestrator's ModuleConfig filter keeps only generation and the registry section."""
    harness = ModuleHarness(repo_root, example_cluster.objects, example_cluster.globals)
    config = harness.config(harness.hook("orchestrator"))
    raw = example_cluster.with_registry_settings({"mode": "Direct"}).module_config()
    context = bindings.helm_phase_context(config, "beforeHelm", [raw])
    item = context["snapshots"]["module_config"][0]
    assert item["filterResult"] == {"generation": raw["metadata"]["generation"], "registry": {"mode": "Direct"}}
    assert item["filterResult"] != raw
    assert "object" not in item, "keepFullObjectsInMemory: false drops the full object"


def test_required_for_helm_is_enforced_only_before_render(tmp_path, repo_root):
    import shutil

    import yaml

    module = tmp_path / "module"
    (module / "hooks").mkdir(parents=True)
    shutil.copytree(repo_root / "openapi", module / "openapi")
    schema_path = module / "openapi" / "values.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    schema["properties"]["internal"]["properties"]["orchestrator"]["x-required-for-helm"] = ["hash"]
    schema_path.write_text(yaml.safe_dump(schema))
    harness = ModuleHarness(module)
    harness.before_helm()  # no hooks: values stay without the hash, which is fine between runs
    with pytest.raises(ValuesValidationError, match="hash"):
        harness.helm_values()
    harness.module_values["internal"]["orchestrator"]["hash"] = "abc"
    assert harness.helm_values()["registry"]["internal"]["orchestrator"]["hash"] == "abc"
