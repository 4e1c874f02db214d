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
"""One module as addon-operator drives it: hooks discovered from disk, fed with snapshots of a set of
objects, their values patches applied under addon-operator's rules, and the chart rendered by Helm.

The Kubernetes API server is the one piece that cannot run here; 'objects' stands in for it.
"""

from __future__ import annotations

import copy
from pathlib import Path

from . import bindings, protocol
from .memo import clone
from .values_rules import MODULE, apply_patch, validate_config_values, validate_module_values


class NotConverged(AssertionError):
    """A hook re-run on its own output still wants to change values (it would loop forever)."""


class ModuleHarness:
    def __init__(
        self,
        module_dir: Path,
        objects: list[dict] | None = None,
        global_values: dict | None = None,
        config_values: dict | None = None,
        *,
        in_process: bool = False,
        env: dict[str, str] | None = None,
    ):
        self.module_dir = Path(module_dir)
        self.hooks_dir = self.module_dir / "hooks"
        self.openapi_dir = self.module_dir / "openapi"
        self.objects: list[dict] = list(objects or [])
        self.global_values = copy.deepcopy(global_values or {})
        self.config_values = validate_config_values(self.openapi_dir, config_values or {})
        self.module_values = validate_module_values(self.openapi_dir, copy.deepcopy(self.config_values))
        self.in_process = in_process
        self.env = dict(env or {})
        self.kube_operations: list[dict] = []
        self.results: list[tuple[str, protocol.HookResult]] = []

    # -- what hooks see -------------------------------------------------------------------------
    @property
    def values(self) -> dict:
        return {"global": clone(self.global_values), MODULE: clone(self.module_values)}

    def hooks(self) -> list[Path]:
        return protocol.discover_hooks(self.hooks_dir)

    def hook(self, name: str) -> Path:
        for path in self.hooks():
            if path.name == name or path.stem == name:
                return path
        raise KeyError(f"no executable hook named {name!r} in {self.hooks_dir}")

    def config(self, hook: Path) -> dict:
        return protocol.hook_config(hook)

    # -- running ---------------------------------------------------------------------------------
    def execute(self, hook: Path, contexts: list[dict]) -> protocol.HookResult:
        """Run a hook on the current values without applying anything."""
        config_values = {"global": {}, MODULE: clone(self.config_values)}
        if self.in_process:
            return protocol.run_in_process(hook, contexts, self.values, config_values, extra_env=self.env)
        return protocol.run_subprocess(hook, contexts, self.values, config_values, extra_env=self.env)

    def run(self, hook: Path, contexts: list[dict]) -> protocol.HookResult:
        """Run a hook and apply its values patch strictly, then validate the module values."""
        result = self.execute(hook, contexts)
        # apply_patch works on a copy of its own, so the harness's values are handed to it as they are
        patched = apply_patch({"global": self.global_values, MODULE: self.module_values}, result.values_patch)
        if patched.get("global") != self.global_values:
            raise AssertionError("a values patch changed global values")
        self.module_values = validate_module_values(self.openapi_dir, patched.get(MODULE, {}))
        self.kube_operations.extend(result.kube_operations)
        self.results.append((hook.name, result))
        return result

    def synchronize(self) -> None:
        for hook in self.hooks():
            contexts = bindings.synchronization_contexts(self.config(hook), self.objects)
            if contexts:
                self.run(hook, contexts)

    def start(self) -> None:
        """What addon-operator does when it starts: the Synchronization run of every kube hook
        (as its informers come up), then the module run with the beforeHelm hooks by order."""
        self.synchronize()
        self.before_helm()

    def _phase(self, phase: str) -> None:
        ordered = []
        for hook in self.hooks():
            config = self.config(hook)
            if phase in config:
                ordered.append((config[phase], str(hook), hook, config))
        for _order, _path, hook, config in sorted(ordered):
            self.run(hook, [bindings.helm_phase_context(config, phase, self.objects)])

    def before_helm(self) -> None:
        self._phase("beforeHelm")

    def after_helm(self) -> None:
        self._phase("afterHelm")

    def pending_patch(self, hook: Path, phase: str = "beforeHelm") -> list[dict]:
        """The patch a re-run would emit on unchanged inputs; empty when the hook has converged."""
        config = self.config(hook)
        return self.execute(hook, [bindings.helm_phase_context(config, phase, self.objects)]).values_patch

    def assert_converged(self, hook: Path, phase: str = "beforeHelm") -> None:
        patch = self.pending_patch(hook, phase)
        if patch:
            raise NotConverged(f"{hook.name} did not converge; a second run still patches: {patch}")

    def helm_values(self) -> dict:
        """Values handed to Helm, checked with x-required-for-helm as addon-operator does before render."""
        module_values = validate_module_values(self.openapi_dir, self.module_values, for_helm=True)
        return {"global": clone(self.global_values), MODULE: module_values}
