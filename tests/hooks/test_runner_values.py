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
"""The runner copies values through JSON and skips its checks for unchanged values (issue #15): what a hook
writes is still checked to be plain JSON data, and an unchanged run still writes no patch."""

from __future__ import annotations

import pytest
from d8registry.operator import protocol
from d8registry.operator.module import ModuleHarness

from tests.hooks.test_harness import _module_with_hook


@pytest.mark.parametrize(("value", "error"), [
    ("('a', 'b')", "changed on a JSON round trip"),
    ("{'a'}", "not plain JSON data"),
    ("object()", "not plain JSON data"),
])
def test_a_value_that_is_not_plain_json_fails_the_hook(tmp_path, repo_root, value, error):
    module, _hook = _module_with_hook(tmp_path, repo_root,
                                      f"set_path(ctx.values, 'registry.internal.orchestrator.state.params', {value})")
    with pytest.raises(protocol.HookFailed, match=error):
        ModuleHarness(module).before_helm()


def test_values_written_back_unchanged_give_no_patch(tmp_path, repo_root):
    body = """
    from lib.values import get_path
    set_path(ctx.values, 'registry.internal.checker', dict(get_path(ctx.values, 'registry.internal.checker')))
    """
    module, hook = _module_with_hook(tmp_path, repo_root, body)
    harness = ModuleHarness(module)
    assert harness.run(hook, [{"binding": "a"}]).values_patch == []


def test_a_hook_cannot_change_the_values_it_was_given_behind_the_runner(tmp_path, repo_root):
    """The diff base is a copy of its own: editing ctx.values in place still produces the patch."""
    body = "ctx.values['registry']['internal']['checker']['initialized'] = True"
    module, hook = _module_with_hook(tmp_path, repo_root, body)
    harness = ModuleHarness(module)
    result = harness.run(hook, [{"binding": "a"}])
    assert result.values_patch == [{"op": "add", "path": "/registry/internal/checker/initialized", "value": True}]
