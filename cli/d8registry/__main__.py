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
"""d8registry: run the registry module's hooks and chart against a cluster, without a cluster.

Without arguments it runs every hook of the module on the built-in example cluster through the
real hook protocol, renders the chart with Helm and prints the resulting values and objects.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from . import cluster as cluster_mod
from . import helm, redact
from .operator import protocol, values_rules
from .operator.module import ModuleHarness

MODULE_DIR = Path(__file__).resolve().parents[2]


class UsageError(ValueError):
    pass


def _parse_set(pairs: list[str]) -> dict:
    """'--set mode=Direct --set direct.imagesRepo=r.example.com/d8' into a nested mapping."""
    result: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects key=value, got {pair!r}")
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {key}: {part!r} is already a value")
        node[parts[-1]] = value
    return result


def _registry_settings(args) -> dict | None:
    if args.settings:
        try:
            loaded = yaml.safe_load(Path(args.settings).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read settings file {args.settings}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise UsageError(f"settings file {args.settings} is not valid YAML: {' '.join(str(exc).split())}") from exc
        return loaded.get("registry", loaded) if isinstance(loaded, dict) else loaded
    if args.set:
        return _parse_set(args.set)
    return None


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def run_module(args) -> int:
    cluster = cluster_mod.load(Path(args.cluster) if args.cluster else None)
    registry = _registry_settings(args)
    if registry is not None:
        cluster = cluster.with_registry_settings(registry)
    harness = ModuleHarness(MODULE_DIR, cluster.objects, cluster.globals)
    hooks = harness.hooks()
    _progress(f"cluster: {cluster.description or args.cluster}")
    _progress("hooks: " + ", ".join(h.name for h in hooks))
    _progress("synchronization (every hook's informers start)")
    harness.synchronize()
    _progress("beforeHelm hooks")
    harness.before_helm()
    _progress("helm template (Helm v3 CLI)")
    objects = helm.render(MODULE_DIR, harness.helm_values())
    _progress("afterHelm hooks")
    harness.after_helm()
    module_values = harness.module_values
    report = {
        "values": {"registry": module_values},
        "objects": objects,
        "kubernetesOperations": harness.kube_operations,
    }
    if not args.show_secrets:
        report = redact.redact(report)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    state = module_values.get("internal", {}).get("orchestrator", {}).get("state", {})
    print(f"Mode: {state.get('mode')} -> {state.get('target_mode')}"
          f"{' (non-configurable)' if state.get('target_legacy') else ''}")
    print("Conditions:")
    for condition in state.get("conditions", []):
        first_line = (condition.get("message") or "").splitlines()[:1]
        print(f"  {condition['type']:<32} {condition['status']:<6} {condition.get('reason', ''):<22} "
              f"{first_line[0] if first_line else ''}")
    print("Rendered objects:")
    for obj in objects:
        meta = obj.get("metadata", {})
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        print(f"  {obj.get('kind')} {where}{meta.get('name')}")
    print("Values (secrets redacted):" if not args.show_secrets else "Values:")
    print(yaml.safe_dump(report["values"], sort_keys=True, width=120).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="d8registry", description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run all hooks and render the chart (the default)")
    for target in (parser, run):
        target.add_argument("--cluster", help="cluster YAML (globals + objects); default: built-in example")
        target.add_argument("--settings", help="YAML file with the 'registry' settings section")
        target.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="registry setting, e.g. mode=Direct or direct.imagesRepo=host/path")
        target.add_argument("--json", action="store_true", help="machine-readable output")
        target.add_argument("--show-secrets", action="store_true", help="do not redact secrets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_module(args)
    except (UsageError, cluster_mod.ClusterError) as exc:
        print(f"d8registry: {exc}", file=sys.stderr)
        return 2
    except (protocol.HookFailed, protocol.HookConfigError, values_rules.ValuesPatchError,
            values_rules.ValuesValidationError, helm.HelmError) as exc:
        print(f"d8registry: module run failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
