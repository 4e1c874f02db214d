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

import json
import sys
from collections.abc import Callable, Iterable

from deckhouse.conversions import ConversionsCollector
from deckhouse.hook import Context, Output
from deckhouse.kubernetes import KubeOperationCollector
from deckhouse.metrics import MetricsCollector
from deckhouse.module import get_binding_context, get_config, get_values
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

    def update(self, updated_values: dict):
        # equal values give no patch; the SDK's diff would walk every key in Python to find that out
        if updated_values != self.initial_values:
            super().update(updated_values)


def _json_text(values: dict) -> str | None:
    """The JSON text of plain JSON data (it parses back equal), or None for anything else."""
    try:
        text = json.dumps(values)
    except (TypeError, ValueError):
        return None
    return text if json.loads(text) == values else None


def _copies(values: dict, count: int) -> list[dict]:
    """Independent copies of the values: parsed from their JSON text when they are plain JSON data."""
    text = _json_text(values)
    if text is not None:
        return [json.loads(text) for _ in range(count)]
    import copy  # values handed in by a test or the simulator may hold tuples; keep them as they are

    return [copy.deepcopy(values) for _ in range(count)]


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
    contexts = list(binding_contexts or []) or [{}]
    initial, values = _copies(initial_values or {}, 2)
    output = Output(
        MetricsCollector(),
        KubeOperationCollector(),
        _ValuesPatches(initial),
        ConversionsCollector(),
        ValidationsCollector(),
    )
    for binding_context in contexts:
        # one working copy carried through every context: each sees what the previous one left
        ctx = _Context(binding_context, _copies(config_values or {}, 1)[0], values, output)
        main(ctx)
        values = ctx.values
    _ensure_plain(values)
    output.values = values
    output.values_patches.update(values)
    return output


def run(main: HookMain, config: dict) -> None:
    """Entry point of an executable hook: '--config' prints the config, otherwise the file protocol."""
    if len(sys.argv) > 1 and sys.argv[1] == "--config":
        print(json.dumps(config))
        return
    output = execute(main, get_binding_context(), get_values(), get_config())
    output.flush()
