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
"""Image-availability checker (RegistryContainsRequiredImages): image set, queues, status message.

Everything here is a pure function of (state, params, globals, Deckhouse images, now) except run(),
which drives the registry client (checker_http) from worker threads within a time budget. The HTTP
module is imported lazily so checker_init, which only restores state, stays cheap to start.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import clock, hashing
from .metrics import expire, gauge

METRICS_GROUP = "d8_registry_checker"
WORKERS = 3
BUDGET_SECONDS = 25.0
# checks stop this long before the budget ends, so that a worker blocked where no socket timeout
# reaches (DNS) can be abandoned and the run still ends within the budget
JOIN_GRACE_SECONDS = 0.5
RETRY_DELAY = timedelta(seconds=10)
MAX_ERROR_BLOCKS = 5
CHECK_MODES = ("Default", "Relax")
DECKHOUSE_LABEL = "deckhouse/containers/deckhouse"
RELAX_NEEDS_TAG = "Relax mode requires a tagged deckhouse image"
STOPPED = "Stopped"


class CheckerInputError(RuntimeError):
    """The inputs do not allow building an image set (the hook fails and the schedule retries)."""


# -- names -------------------------------------------------------------------------------------

def camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def kebab(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name)
    name = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "-", name)
    return name.replace("_", "-").lower()


# -- params ------------------------------------------------------------------------------------

_REGISTRY_KEYS = {"address", "scheme", "ca", "username", "password"}


def validate_params(params: object) -> list[str]:
    """Problems that make params unusable (restored params with any problem are dropped).

    Messages name fields, never values: params carry credentials.
    """
    from .checker_http import split_repository

    if not isinstance(params, dict):
        return ["params must be an object"]
    problems = []
    unknown = set(params) - {"registries", "checkMode", "version"}
    if unknown:
        problems.append(f"unknown params fields: {sorted(unknown)}")
    if params.get("checkMode", "Default") not in CHECK_MODES:
        problems.append("checkMode must be Default or Relax")
    if not isinstance(params.get("version", ""), str):
        problems.append("version must be a string")
    registries = params.get("registries", {})
    if not isinstance(registries, dict):
        return problems + ["registries must be an object"]
    for name, registry in registries.items():
        if not name or "/" in name or "~" in name:
            problems.append(f"registry name {name!r} is not usable as a values key")
            continue
        if not isinstance(registry, dict):
            problems.append(f"registries.{name} must be an object")
            continue
        if set(registry) - _REGISTRY_KEYS:
            problems.append(f"registries.{name} has unknown fields: {sorted(set(registry) - _REGISTRY_KEYS)}")
        if any(not isinstance(registry.get(key, ""), str) for key in _REGISTRY_KEYS):
            problems.append(f"registries.{name}: every field must be a string")
            continue
        try:
            split_repository(registry.get("address", ""))
        except ValueError:
            problems.append(f"registries.{name}.address must look like host[:port]/path")
        if registry.get("scheme", "HTTPS") not in ("HTTP", "HTTPS"):
            problems.append(f"registries.{name}.scheme must be HTTP or HTTPS")
        if bool(registry.get("username")) != bool(registry.get("password")):
            problems.append(f"registries.{name}: username and password go together")
    return problems


def queue_params_hash(registry: dict, check_mode: str) -> str:
    """What a queue was built for: a change of either means the queue's results no longer apply."""
    return hashing.sha256_hex({"registry": registry, "checkMode": check_mode})


# -- state restore -----------------------------------------------------------------------------

def _clean_item(item: object) -> dict | None:
    if not isinstance(item, dict) or not isinstance(item.get("image"), str):
        return None
    out = {"image": item["image"], "info": str(item.get("info", ""))}
    if isinstance(item.get("error"), str) and item["error"]:
        out["error"] = item["error"]
    return out


def normalize_state(state: object) -> dict | None:
    """A restored state rebuilt field by field (values reject unknown keys); None when unusable."""
    if not isinstance(state, dict):
        return None
    out: dict = {"ready": bool(state.get("ready", False))}
    for key in ("version", "message"):
        if isinstance(state.get(key), str) and state[key]:
            out[key] = state[key]
    queues = state.get("queues", {})
    if not isinstance(queues, dict):
        return None
    clean_queues = {}
    for name, queue in queues.items():
        if not isinstance(queue, dict) or not name or "/" in name or "~" in name:
            return None
        items = [_clean_item(i) for i in queue.get("items") or []]
        retry = [_clean_item(i) for i in queue.get("retry") or []]
        processed = queue.get("processed", 0)
        if None in items or None in retry or not isinstance(processed, int) or processed < 0:
            return None
        clean = {"processed": processed, "items": items, "retry": retry,
                 "params_hash": str(queue.get("params_hash", ""))}
        if queue.get("last_attempt"):
            try:
                clean["last_attempt"] = clock.rfc3339(clock.parse_rfc3339(str(queue["last_attempt"])))
            except ValueError:
                return None
        clean_queues[name] = clean
    if clean_queues:
        out["queues"] = clean_queues
    return out


# -- image set ---------------------------------------------------------------------------------

def rehome(image: str, repository: str) -> str:
    """The same tag or digest, in another repository."""
    if "@" in image:
        return f"{repository}@{image.rpartition('@')[2]}"
    slash, colon = image.rfind("/"), image.rfind(":")
    tag = image[colon + 1:] if colon > slash else "latest"
    return f"{repository}:{tag}"


def deckhouse_images(snapshot_result: object) -> list[dict]:
    """The deckhouse_deployment jq result as [{kind, name, image}] (absent Deployment -> [])."""
    if isinstance(snapshot_result, dict):
        snapshot_result = [snapshot_result]
    if not isinstance(snapshot_result, list):
        return []
    return [c for c in snapshot_result
            if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("image"), str)
            and c.get("kind") in ("containers", "initContainers")]


def build_image_set(global_values: dict, containers: list[dict], repository: str, check_mode: str) -> list[dict]:
    """Queue items {image, info} for one registry, de-duplicated by reference and sorted by label."""
    deckhouse = [(f"deckhouse/{c['kind']}/{c['name']}", rehome(c["image"], repository)) for c in containers]
    if not any(label == DECKHOUSE_LABEL for label, _ in deckhouse):
        raise CheckerInputError("Deployment d8-system/deckhouse with container 'deckhouse' is not in the "
                                "deckhouse_deployment snapshot; cannot build the image set")
    if check_mode == "Relax":
        pairs = [(label, ref) for label, ref in deckhouse if label == DECKHOUSE_LABEL]
    else:
        pairs = list(deckhouse)
        digests = ((global_values.get("modulesImages") or {}).get("digests") or {})
        for module in global_values.get("enabledModules") or []:
            images = digests.get(camel(str(module)))
            if not isinstance(images, dict):
                continue
            for image_name, digest in images.items():
                if isinstance(digest, str):
                    pairs.append((f"module/{kebab(str(module))}/{kebab(image_name)}", f"{repository}@{digest}"))
    seen: set[str] = set()
    items = []
    for label, ref in sorted(pairs):
        if ref not in seen:
            seen.add(ref)
            items.append({"image": ref, "info": label})
    return items


def item_problem(item: dict, check_mode: str) -> str | None:
    """An error known without asking the registry."""
    if check_mode == "Relax" and item.get("info") == DECKHOUSE_LABEL and "@" in item["image"]:
        return RELAX_NEEDS_TAG
    return None


# -- message -----------------------------------------------------------------------------------

def _error_items(queue: dict) -> list[dict]:
    failed = list(queue.get("retry") or []) + [i for i in queue.get("items") or [] if i.get("error")]
    return sorted(failed, key=lambda i: (i.get("info", ""), i["image"]))


def queue_totals(queue: dict) -> tuple[int, int, int]:
    """(processed, total, with errors)."""
    processed = queue.get("processed", 0)
    total = processed + len(queue.get("items") or []) + len(queue.get("retry") or [])
    return processed, total, len(_error_items(queue))


def build_message(queues: dict, check_mode: str) -> str:
    lines = [f"Mode: {check_mode}"]
    for name in sorted(queues):
        queue = queues[name]
        processed, total, errors = queue_totals(queue)
        if not queue.get("items") and not queue.get("retry"):
            lines.append(f"{name}: all {processed} items are checked")
            continue
        lines.append(f"{name}: {processed} of {total} items processed, {errors} items with errors:")
        failed = _error_items(queue)
        for item in failed[:MAX_ERROR_BLOCKS]:
            lines += [f"- source: {item.get('info', '')}", f"  image: {item['image']}", f"  error: {item['error']}"]
        if len(failed) > MAX_ERROR_BLOCKS:
            lines.append("...and more")
    return "\n".join(lines)


def is_ready(queues: dict) -> bool:
    return not any(q.get("items") or q.get("retry") for q in queues.values())


# -- checking ----------------------------------------------------------------------------------

@dataclass
class _Work:
    """One registry's items for this run; workers take from the front, results are collected once."""

    items: list[dict]
    pending: deque = field(init=False)
    passed: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    # set by the first registry-wide failure: the remaining items get it without another attempt
    fatal: str | None = None

    def __post_init__(self):
        self.pending = deque(range(len(self.items)))

    def take(self) -> int | None:
        with self.lock:
            if self.closed or not self.pending:
                return None
            return self.pending.popleft()

    def record(self, index: int, error: str | None) -> None:
        with self.lock:
            if self.closed:
                return  # a late result after the budget: the item stays queued instead
            if error is None:
                self.passed.add(index)
            else:
                self.failed[index] = error

    def close(self) -> None:
        with self.lock:
            self.closed = True


def _worker(work: _Work, session, check_mode: str, deadline: float) -> None:
    from .checker_http import BudgetExceeded, CheckError

    try:
        while time.monotonic() < deadline:
            index = work.take()
            if index is None:
                return
            item = work.items[index]
            problem = item_problem(item, check_mode) or work.fatal
            if problem is None:
                try:
                    session.check(item["image"], deadline)
                except BudgetExceeded:
                    return
                except CheckError as exc:
                    problem = str(exc) or "check failed"
                    if exc.registry_wide:
                        work.fatal = problem
                except Exception as exc:  # a bug must cost one item, not the whole run
                    problem = f"internal checker error ({type(exc).__name__})"
            work.record(index, problem)
    finally:
        session.close()


def check_items(works: dict[str, tuple[_Work, object]], check_mode: str, end: float, workers: int) -> None:
    """Run every registry's work with `workers` threads each until done or the end of the budget."""
    deadline = end - min(JOIN_GRACE_SECONDS, (end - time.monotonic()) / 5)
    threads = []
    for work, client in works.values():
        for _ in range(max(1, min(workers, len(work.items)))):
            thread = threading.Thread(target=_worker, args=(work, client.session(), check_mode, deadline),
                                      daemon=True)
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    for work, _client in works.values():
        work.close()


# -- one run -----------------------------------------------------------------------------------

@dataclass
class RunResult:
    state: dict
    checked: int = 0
    errors: int = 0
    duration: float = 0.0
    events: list[tuple[str, dict]] = field(default_factory=list)


def _due(queue: dict, now: datetime) -> bool:
    if not queue.get("items"):
        return False
    last = queue.get("last_attempt")
    return not last or now >= clock.parse_rfc3339(last) + RETRY_DELAY


def run(state: dict, params: dict, global_values: dict, containers: list[dict], now: datetime, *,
        budget: float | None = None, workers: int | None = None, client_factory=None) -> RunResult:
    """One checker run: reconcile queues with params, check what is due within the budget.

    `now` (from clock.py, pinnable in tests) stamps and schedules retries; the budget is elapsed time
    and is measured with time.monotonic, which a pinned wall clock must not freeze.
    """
    from . import checker_http

    started = time.monotonic()
    end = started + (BUDGET_SECONDS if budget is None else budget)
    workers = WORKERS if workers is None else workers
    events: list[tuple[str, dict]] = []
    registries = params.get("registries") or {}
    check_mode = params.get("checkMode") or "Default"
    queues = copy.deepcopy(state.get("queues") or {})

    for name in sorted(set(queues) - set(registries)):
        del queues[name]
        events.append(("Deleting queue", {"registry": name}))

    for name in sorted(registries):
        registry = registries[name]
        wanted = queue_params_hash(registry, check_mode)
        queue = queues.get(name)
        if queue is not None and queue.get("params_hash") == wanted:
            if not queue.get("items") and queue.get("retry"):
                queue["items"], queue["retry"] = queue["retry"], []
                queue["last_attempt"] = clock.rfc3339(now)
                events.append(("Retry items moved", {"registry": name, "items": len(queue["items"])}))
            continue
        try:
            netloc, path = checker_http.split_repository(registry.get("address", ""))
        except ValueError as exc:
            raise CheckerInputError(f"registry {name!r}: {exc}") from None
        items = build_image_set(global_values, containers, f"{netloc}/{path}", check_mode)
        queues[name] = {"processed": 0, "items": items, "retry": [], "params_hash": wanted}
        events.append(("Added queue", {"registry": name, "items": len(items)}))

    checked = errors = 0
    due = {name: queues[name] for name in sorted(queues) if _due(queues[name], now)}
    if due:
        factory = client_factory or (lambda reg: checker_http.RegistryClient(checker_http.RegistryParams.from_values(reg)))
        works = {name: (_Work(queue["items"]), factory(registries[name])) for name, queue in due.items()}
        check_items(works, check_mode, end, workers)
        for name, (work, _client) in works.items():
            queue = due[name]
            queue["processed"] = queue.get("processed", 0) + len(work.passed)
            for index in sorted(work.failed):
                queue.setdefault("retry", []).append({**work.items[index], "error": work.failed[index]})
            done = work.passed | set(work.failed)
            queue["items"] = [item for index, item in enumerate(work.items) if index not in done]
            checked += len(done)
            errors += len(work.failed)

    new_state: dict = {"ready": True, "message": STOPPED} if not registries else {
        "ready": is_ready(queues), "message": build_message(queues, check_mode)}
    if queues:
        new_state["queues"] = queues
    if params.get("version"):
        new_state["version"] = params["version"]
    return RunResult(new_state, checked, errors, time.monotonic() - started, events)


def metrics(state: dict, duration: float) -> list[dict]:
    """The full checker metric set (re-emitted every run, so removed registries disappear)."""
    records = [expire(METRICS_GROUP)]
    for name, queue in sorted((state.get("queues") or {}).items()):
        processed, total, errors = queue_totals(queue)
        labels = {"registry": name}
        records.append(gauge("d8_registry_checker_items", total, labels, METRICS_GROUP))
        records.append(gauge("d8_registry_checker_items_processed", processed, labels, METRICS_GROUP))
        records.append(gauge("d8_registry_checker_items_failed", errors, labels, METRICS_GROUP))
    records.append(gauge("d8_registry_checker_ready", 1 if state.get("ready") else 0, None, METRICS_GROUP))
    records.append(gauge("d8_registry_checker_run_duration_seconds", round(duration, 3), None, METRICS_GROUP))
    return records
