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
"""d8registry: run, preview and debug the registry module without a cluster.

Without a subcommand it simulates the default scenario on the built-in example cluster:
Unmanaged -> Direct -> Proxy -> Direct -> Local -> Unmanaged, with the real hooks, the real Helm
chart and the real node steps, printing the condition timeline of every switch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from . import cluster as cluster_mod
from . import helm, redact
from .sim import scenario

if TYPE_CHECKING:
    from .operator.module import ModuleHarness

MODULE_DIR = Path(__file__).resolve().parents[2]


class UsageError(ValueError):
    pass


def _load_cluster(args) -> cluster_mod.Cluster:
    return cluster_mod.load(Path(args.cluster) if getattr(args, "cluster", None) else None)


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _registry_settings(args, cluster) -> dict | None:
    if getattr(args, "settings", None):
        return scenario.load_settings_file(args.settings[-1] if isinstance(args.settings, list) else args.settings)
    if getattr(args, "set", None):
        return scenario.settings_from_set(",".join(args.set), cluster)
    return None


def _harness_after_module_run(args, cluster) -> ModuleHarness:
    from .operator.module import ModuleHarness  # on use: the operator stand-in loads jsonschema (issue #15)

    registry = _registry_settings(args, cluster)
    if registry is not None or getattr(args, "settings", None) or getattr(args, "set", None):
        cluster = cluster.with_registry_settings(registry)
    harness = ModuleHarness(MODULE_DIR, cluster.objects, cluster.globals)
    _progress("synchronization, then beforeHelm hooks (real hook protocol)")
    harness.synchronize()
    harness.before_helm()
    return harness


def cmd_render(args) -> int:
    cluster = _load_cluster(args)
    if args.values:
        values = json.loads(Path(args.values).read_text(encoding="utf-8"))
        objects = helm.render(MODULE_DIR, values)
        module_values = values.get("registry", {})
    else:
        harness = _harness_after_module_run(args, cluster)
        _progress("helm template (Helm v3 CLI)")
        objects = helm.render(MODULE_DIR, harness.helm_values())
        module_values = harness.module_values
    report = {"values": {"registry": module_values}, "objects": objects}
    if not args.show_secrets:
        report = redact.redact(report)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    state = module_values.get("internal", {}).get("orchestrator", {}).get("state", {})
    print(f"Mode: {state.get('mode')} -> {state.get('target_mode')}"
          f"{' (non-configurable)' if state.get('target_legacy') else ''}")
    from .sim.report import conditions_table

    print("Conditions:")
    print("\n".join(conditions_table(state)))
    print("Rendered objects:")
    for obj in objects:
        meta = obj.get("metadata", {})
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        print(f"  {obj.get('kind')} {where}{meta.get('name')}")
    if args.output_values:
        print("Values (secrets redacted):" if not args.show_secrets else "Values:")
        print(yaml.safe_dump(report["values"], sort_keys=True, width=120).rstrip())
    return 0


def cmd_simulate(args) -> int:
    from .sim.run import simulate

    cluster = _load_cluster(args)
    return simulate(args, cluster, sys.stdout, scenario.DEFAULT_SEQUENCE)


def cmd_hook(args) -> int:
    from .operator import bindings, values_rules
    from .operator.module import ModuleHarness

    cluster = _load_cluster(args)
    if args.snapshots:
        from .snapshots import replay

        return replay(MODULE_DIR, cluster, args, sys.stdout)
    harness = ModuleHarness(MODULE_DIR, cluster.objects, cluster.globals)
    if args.values:
        harness.module_values = values_rules.validate_module_values(
            harness.openapi_dir, json.loads(Path(args.values).read_text(encoding="utf-8")).get("registry", {}))
    hook = harness.hook(args.name)
    config = harness.config(hook)
    if args.binding_context:
        contexts = json.loads(Path(args.binding_context).read_text(encoding="utf-8"))
    elif "beforeHelm" in config:
        contexts = [bindings.helm_phase_context(config, "beforeHelm", cluster.objects)]
    else:
        contexts = bindings.synchronization_contexts(config, cluster.objects) or [{"binding": "manual"}]
    result = harness.execute(hook, contexts)
    report = {"snapshots": {c.get("binding", ""): c.get("snapshots", {}) for c in contexts},
              "valuesPatch": result.values_patch, "kubernetesOperations": result.kube_operations,
              "metrics": result.metrics, "logs": result.logs}
    if not args.show_secrets:
        report = redact.redact(report)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


def cmd_status(args) -> int:
    from .status import status

    return status(args, sys.stdout)


def cmd_plan(args) -> int:
    from .plan import plan

    if args.live:
        from .live import read_cluster

        cluster = read_cluster(args)
    else:
        cluster = _load_cluster(args)
    registry = _registry_settings(args, cluster)
    if registry is None and not (args.settings or args.set):
        raise UsageError("plan needs the target: --set mode=... or --settings <file>")
    return plan(MODULE_DIR, cluster, registry, sys.stdout, all_nodes=args.all_nodes)


def cmd_up(args) -> int:
    from .up import up

    return up(args, sys.stdout)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", help="cluster YAML (globals + objects); default: the built-in example")


def _simulate_options(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE[,KEY=VALUE]",
                        help="one switch per flag, e.g. mode=Proxy or mode=Direct,direct.imagesRepo=host/path "
                             "(mode=Legacy: non-configurable Unmanaged)")
    parser.add_argument("--settings", action="append", metavar="FILE", help="a 'registry' settings YAML, one switch per file")
    parser.add_argument("--max-ticks", type=int, default=300, help="give up on a switch after this many ticks")
    parser.add_argument("--json", action="store_true", help="machine-readable summary")
    parser.add_argument("--in-process", action="store_true",
                        help="run hooks in-process (faster, less faithful; the checkout's hooks only)")
    parser.add_argument("--no-push", action="store_true", help="never fill Local replicas (d8 mirror push)")
    parser.add_argument("--push-after", type=int, default=3, help="ticks after a switch to Local until the push")
    parser.add_argument("--node-not-ready", action="append", metavar="NODE@TICK")
    parser.add_argument("--node-ready", action="append", metavar="NODE@TICK")
    parser.add_argument("--restart-deckhouse", action="append", metavar="TICK", help="wipe module values at TICK")
    parser.add_argument("--custom-containerd", action="append", metavar="NODE",
                        help="the node has custom registry settings in config.toml")
    parser.add_argument("--module-dir", metavar="DIR", help="run this module tree, e.g. build/bundle from 'make bundle' "
                                                          "(default: $D8REGISTRY_MODULE_DIR, else the checkout)")
    parser.add_argument("--dump-to", metavar="FILE", help="write the final cluster (globals + objects) here; "
                                                          "usable as --cluster or status --dump")
    parser.add_argument("--real-dataplane", action="store_true",
                        help="root only: every node runs real containerd, node LB and registry pods on loopback "
                             "and pulls over CRI throughout the switches; exit 4 when a pull failed "
                             "(README, docs/INSTALL.md)")


def _kube_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="FILE", help="with --live: kubeconfig (default: kubectl's own)")
    parser.add_argument("--context", metavar="NAME", help="with --live: kubeconfig context (default: current)")


def cmd_dump(args) -> int:
    from .live import dump

    return dump(args, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="d8registry", description=(__doc__ or "").strip().splitlines()[0])
    _simulate_options(parser)
    sub = parser.add_subparsers(dest="command")

    simulate = sub.add_parser("simulate", help="run switches on a simulated cluster (the default)")
    _simulate_options(simulate)

    render = sub.add_parser("render", help="run the hooks once and render the chart with Helm")
    _common(render)
    render.add_argument("--set", action="append", metavar="KEY=VALUE")
    render.add_argument("--settings", metavar="FILE")
    render.add_argument("--values", metavar="FILE", help="render these values instead of running the hooks")
    render.add_argument("--json", action="store_true")
    render.add_argument("--output-values", action="store_true", help="also print the module values")
    render.add_argument("--show-secrets", action="store_true")

    hook = sub.add_parser("hook", help="run one hook on a cluster dump through the real protocol")
    _common(hook)
    hook.add_argument("name", help="hook file name, e.g. orchestrator")
    hook.add_argument("--binding-context", metavar="FILE")
    hook.add_argument("--snapshots", metavar="FILE", help="addon-operator's snapshot dump (JSON or YAML) of a real "
                                                          "cluster: `deckhouse-controller module snapshots registry -o json`")
    hook.add_argument("--values", metavar="FILE", help="module values (`deckhouse-controller module values registry -o json`)")
    hook.add_argument("--globals", metavar="FILE", help="global values (default: the --cluster file's globals)")
    hook.add_argument("--json", action="store_true", help="with --snapshots: machine-readable report")
    hook.add_argument("--show-secrets", action="store_true")

    status = sub.add_parser("status", help="conditions, nodes and checker progress")
    status.add_argument("--dump", metavar="FILE", help="cluster dump (the format of --cluster)")
    status.add_argument("--live", action="store_true", help="read the cluster through kubectl")
    status.add_argument("-v", "--verbose", action="store_true", help="every line of every message")
    _kube_options(status)

    plan = sub.add_parser("plan", help="what a switch will do, before doing it")
    _common(plan)
    plan.add_argument("--set", action="append", metavar="KEY=VALUE")
    plan.add_argument("--settings", metavar="FILE")
    plan.add_argument("--live", action="store_true", help="plan on the cluster read through kubectl")
    plan.add_argument("--all-nodes", action="store_true",
                      help="play every node on its own (default: alike workers through one of them)")
    _kube_options(plan)
    plan.add_argument("--globals", metavar="FILE", help="with --live: global values instead of the ones read "
                                                        "from the cluster")

    dump = sub.add_parser("dump", help="write the cluster the module sees in the simulator's format")
    dump.add_argument("--live", action="store_true", help="read the cluster through kubectl (required)")
    _kube_options(dump)
    dump.add_argument("-o", "--output", metavar="FILE", default="-", help="cluster YAML for --cluster (default stdout)")
    dump.add_argument("--globals", metavar="FILE", help="global values instead of the ones read from the cluster")
    dump.add_argument("--show-secrets", action="store_true",
                      help="keep secret values (default: placeholders that still simulate)")

    up = sub.add_parser("up", help="bring a mode's data plane up on loopback and pull through it")
    up.add_argument("--mode", choices=["Direct", "Proxy", "Local"], default="Proxy")
    up.add_argument("--masters", type=int, default=3)
    up.add_argument("--upstream-auth", choices=["basic", "token", "none"], default="basic")
    up.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    return parser


COMMANDS = {None: cmd_simulate, "simulate": cmd_simulate, "render": cmd_render, "hook": cmd_hook,
            "status": cmd_status, "plan": cmd_plan, "up": cmd_up,
            "dump": cmd_dump}


def _status_error():
    from .status import StatusError

    return StatusError


def _input_errors() -> tuple:
    from .live import LiveError
    from .snapshots import SnapshotDumpError

    return SnapshotDumpError, LiveError


def _module_run_errors() -> tuple[type[Exception], ...]:
    # Imported only when an error reaches main: `status` never loads the operator stand-in (issue #15).
    from .operator import protocol, values_rules

    return (protocol.HookFailed, protocol.HookConfigError, values_rules.ValuesPatchError,
            values_rules.ValuesValidationError, helm.HelmError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, scenario.ScenarioError, cluster_mod.ClusterError, _status_error(),
            *_input_errors()) as exc:
        print(f"d8registry: {exc}", file=sys.stderr)
        return 2
    except _module_run_errors() as exc:
        print(f"d8registry: module run failed: {' '.join(str(exc).split())[:2000]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("d8registry: interrupted", file=sys.stderr)
        return 130
    except KeyError as exc:
        print(f"d8registry: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
