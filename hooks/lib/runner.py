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
"""Chained hook runner.

The SDK's run() gives every binding context the *initial* values and records a values patch after
each one, so with several contexts in one run later contexts overwrite earlier results and patches
pile up. This runner carries values from one context to the next, diffs once against the values the
hook started with, and writes every output file once. The same function serves production
(run) and tests/the simulator (execute).

Copies of the values are JSON round trips, not deep copies: values are plain JSON data (checked
below), and the C codec copies them an order of magnitude faster than copy.deepcopy (issue #15).
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable, Iterable

from deckhouse.conversions import ConversionsCollector
from deckhouse.hook import Context, Output
from deckhouse.kubernetes import KubeOperationCollector
from deckhouse.metrics import MetricsCollector
from deckhouse.module import get_binding_context, get_config
from deckhouse.validations import ValidationsCollector
from deckhouse.values import ValuesPatchesCollector

HookMain = Callable[[Context], None]


class _Context(Context):
    """The SDK's Context, given values it may mutate instead of deep-copying them itself."""

    def __init__(self, binding_context: dict, config_values: dict, values: dict, output: Output):
        self.binding_context = binding_context
        self.snapshots = binding_context.get("snapshots", {})
        self.output = output
        self.config_values = config_values
        self.values = values


class _ValuesPatches(ValuesPatchesCollector):
    """The SDK's collector, holding a copy of the initial values made by the caller."""

    def __init__(self, initial_values: dict):
        self.initial_values = initial_values
        self.data = []


def _json_copies(text: str, values: dict | None = None) -> tuple[dict, dict] | None:
    """Two independent copies parsed from JSON text; None when `values` is given and does not parse back equal
    (it was not plain JSON data)."""
    first = json.loads(text) or {}
    if values is not None and first != values:
        return None
    return first, json.loads(text) or {}


def _copies(values: dict) -> tuple[dict, dict, bool]:
    """Two independent copies of the values, and whether they are plain JSON data (then they are parsed
    from their JSON text, much faster than copy.deepcopy)."""
    try:
        copies = _json_copies(json.dumps(values), values)
    except (TypeError, ValueError):
        copies = None
    if copies is not None:
        return *copies, True
    import copy  # values handed in by a test or the simulator may hold tuples; keep them as they are

    return copy.deepcopy(values), copy.deepcopy(values), False


def _ensure_plain(values: dict) -> None:
    """A DotMap or set in values would be serialised wrongly; fail loudly instead."""
    try:
        round_trip = json.loads(json.dumps(values))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"hook values are not plain JSON data: {exc}") from exc
    if round_trip != values:
        raise TypeError("hook values changed on a JSON round trip (non-plain types inside)")


def execute(
    main: HookMain,
    binding_contexts: Iterable[dict] | None,
    initial_values: dict | None,
    config_values: dict | None = None,
) -> Output:
    """Run main once per binding context, values chained, and return the collected output."""
    return _execute(main, binding_contexts, *_copies(initial_values or {}), config_values)


def _execute(main: HookMain, binding_contexts: Iterable[dict] | None, initial: dict, values: dict, plain: bool,
             config_values: dict | None) -> Output:
    """`initial` and `values` are independent copies of the values the hook starts with; `plain`: they are
    plain JSON data."""
    contexts = list(binding_contexts or []) or [{}]
    output = Output(
        MetricsCollector(),
        KubeOperationCollector(),
        _ValuesPatches(initial),
        ConversionsCollector(),
        ValidationsCollector(),
    )
    config_text = json.dumps(config_values or {})
    for binding_context in contexts:
        # one working copy carried through every context: each sees what the previous one left
        ctx = _Context(binding_context, json.loads(config_text), values, output)
        main(ctx)
        values = ctx.values
    output.values = values
    if plain and values == initial:
        # Unchanged: no patch, so nothing is serialised, and the SDK's diff (a Python walk over every key)
        # has nothing to find. Being equal to data parsed from JSON, the values hold no tuple, set or other
        # non-JSON container (none of them equals a list or dict), so the plain-data check has nothing to find.
        return output
    _ensure_plain(values)
    output.values_patches.update(values)
    return output


def _read_values() -> tuple[dict, dict, bool]:
    """The values file as two independent copies, each parsed from the file's text (get_values reads the same)."""
    path = os.getenv("VALUES_PATH")
    if not path:
        return {}, {}, True
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return *_json_copies(text), True


def run(main: HookMain, config: dict, *, cyclic_gc: bool = True) -> None:
    """Entry point of an executable hook: '--config' prints the config, otherwise the file protocol.

    cyclic_gc=False is for a hook whose run is short and makes no cycles worth collecting (no sockets, no
    threads): the process ends after the run and reference counting frees its data, while the cyclic
    collector would only walk every object the run parses, a few percent of the run (issue #15).
    """
    if len(sys.argv) > 1 and sys.argv[1] == "--config":
        print(json.dumps(config))
        return
    if not cyclic_gc:
        gc.disable()
    output = _execute(main, get_binding_context(), *_read_values(), get_config())
    output.flush()
