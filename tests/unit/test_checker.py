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
"""Checker logic without a network: image set, queues, retries, budget, message (4.11)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from d8registry import cluster as cluster_mod
from d8registry.operator import bindings
from hypothesis import given
from hypothesis import strategies as st
from lib import checker, checker_http

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
REPO = "registry.example.com/deckhouse/ee"
JQ = ('[(.spec.template.spec.containers[]? | {kind: "containers", name, image}), '
      '(.spec.template.spec.initContainers[]? | {kind: "initContainers", name, image})]')


@pytest.fixture(scope="module")
def example():
    cluster = cluster_mod.load()
    deployment = next(o for o in cluster.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "deckhouse")
    containers = checker.deckhouse_images(bindings.apply_jq_filter(JQ, deployment))
    return cluster.globals, containers


def _params(*names, check_mode="Default", version="v1", **extra):
    registries = {name: {"address": f"{name}/deckhouse/ee", "scheme": "HTTPS", **extra} for name in names}
    return {"registries": registries, "checkMode": check_mode, "version": version}


class FakeClient:
    """Answers from a dict image -> error (None = present); records what was asked."""

    def __init__(self, answers=None, delay=0.0, default=None):
        self.answers = answers or {}
        self.delay = delay
        self.default = default
        self.asked: list[str] = []
        self.lock = threading.Lock()
        self.sessions = 0

    def session(self):
        with self.lock:
            self.sessions += 1
        return self

    def check(self, image, deadline):
        with self.lock:
            self.asked.append(image)
        if self.delay:
            if time.monotonic() + self.delay > deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                raise checker_http.BudgetExceeded()
            time.sleep(self.delay)
        error = self.answers.get(image, self.default)
        if error:
            raise checker_http.CheckError(error)

    def close(self):
        pass


def _run(state, params, example, client, now=NOW, **kwargs):
    global_values, containers = example
    return checker.run(state, params, global_values, containers, now, client_factory=lambda _reg: client, **kwargs)


# -- names and the image set -------------------------------------------------------------------

@pytest.mark.parametrize("name, camel", [("control-plane-manager", "controlPlaneManager"), ("registry", "registry"),
                                         ("cni-cilium", "cniCilium"), ("ingress-nginx", "ingressNginx")])
def test_camel_case_of_module_names(name, camel):
    assert checker.camel(name) == camel
    assert checker.kebab(camel) == name


@pytest.mark.parametrize("name, kebab", [("kubeApiserver128", "kube-apiserver128"), ("webhookHandler", "webhook-handler"),
                                         ("controller110", "controller110"), ("HTTPServer", "http-server")])
def test_kebab_case_of_image_names(name, kebab):
    assert checker.kebab(name) == kebab


def test_default_image_set_of_the_example_cluster(example):
    global_values, containers = example
    items = checker.build_image_set(global_values, containers, REPO, "Default")
    labels = [i["info"] for i in items]
    assert labels == sorted(labels)
    refs = [i["image"] for i in items]
    assert len(refs) == len(set(refs)), "de-duplicated by reference"
    assert {"image": f"{REPO}:v1.71.3", "info": "deckhouse/containers/deckhouse"} in items
    assert {"image": f"{REPO}@sha256:9c74831c911aa2e0120259045229886dcaba8db276721ca9dc55bf5a4f935139",
            "info": "module/control-plane-manager/kube-apiserver128"} in items
    # deckhouse.init has the init container's digest: one item, the first label wins
    init = [i for i in items if i["image"].endswith("5dcddffc08e7cb5a6ad7320172f86a9e173ee6261f2729f43ae62e3fa8efa67f")]
    assert [i["info"] for i in init] == ["deckhouse/initContainers/init-downloaded-modules"]
    # every enabled module with digests contributes, disabled or digest-less ones do not
    digests = global_values["modulesImages"]["digests"]
    expected = {d for m in global_values["enabledModules"] for d in (digests.get(checker.camel(m)) or {}).values()}
    assert {r.partition("@")[2] for r in refs if "@" in r} == expected
    assert all(i["image"].startswith(REPO) for i in items)


def test_modules_not_enabled_are_not_checked(example):
    global_values, containers = example
    trimmed = {**global_values, "enabledModules": ["registry"]}
    items = checker.build_image_set(trimmed, containers, REPO, "Default")
    assert {i["info"].split("/")[1] for i in items if i["info"].startswith("module/")} == {"registry"}


def test_local_mode_repository_is_the_master_address(example):
    global_values, containers = example
    items = checker.build_image_set(global_values, containers, "10.128.0.10:5001/system/deckhouse", "Default")
    assert all(i["image"].startswith("10.128.0.10:5001/system/deckhouse") for i in items)


def test_relax_mode_checks_only_the_deckhouse_image(example):
    global_values, containers = example
    assert checker.build_image_set(global_values, containers, REPO, "Relax") == [
        {"image": f"{REPO}:v1.71.3", "info": "deckhouse/containers/deckhouse"}]


def test_relax_mode_with_a_digest_deckhouse_image_is_an_item_error(example):
    global_values, _ = example
    containers = [{"kind": "containers", "name": "deckhouse", "image": "r.example.com/d8@sha256:" + "a" * 64}]
    client = FakeClient()
    result = _run({}, _params("registry.example.com", check_mode="Relax"), (global_values, containers), client)
    assert client.asked == []
    assert checker.RELAX_NEEDS_TAG in result.state["message"]
    assert result.state["ready"] is False


def test_rehome_keeps_tag_or_digest():
    assert checker.rehome("registry.deckhouse.ru/deckhouse/ee:v1.71.3", REPO) == f"{REPO}:v1.71.3"
    assert checker.rehome("localhost:5000/a/b@sha256:" + "b" * 64, REPO) == f"{REPO}@sha256:{'b' * 64}"
    assert checker.rehome("localhost:5000/a/b", REPO) == f"{REPO}:latest"


def test_missing_deckhouse_deployment_is_refused_not_cached(example):
    global_values, _ = example
    with pytest.raises(checker.CheckerInputError, match="d8-system/deckhouse"):
        checker.build_image_set(global_values, [], REPO, "Default")


# -- queues and runs ---------------------------------------------------------------------------

def test_no_registries_is_stopped_and_ready(example):
    result = _run({"queues": {"old": {"processed": 1, "items": [], "retry": []}}},
                  {"registries": {}, "version": "idle"}, example, FakeClient())
    assert result.state == {"ready": True, "message": "Stopped", "version": "idle"}
    assert ("Deleting queue", {"registry": "old"}) in result.events


def test_all_present_is_ready_with_the_exact_message(example):
    client = FakeClient()
    result = _run({}, _params("registry.example.com"), example, client)
    total = len(client.asked)
    assert result.state["ready"] is True
    assert result.state["message"] == f"Mode: Default\nregistry.example.com: all {total} items are checked"
    assert result.state["queues"]["registry.example.com"]["processed"] == total
    assert result.checked == total and result.errors == 0
    assert ("Added queue", {"registry": "registry.example.com", "items": total}) in result.events


def test_errors_are_listed_five_at_most_and_sorted(example):
    client = FakeClient(default="404 Not Found: the registry does not have this image")
    result = _run({}, _params("registry.example.com"), example, client)
    lines = result.state["message"].splitlines()
    total = len(client.asked)
    assert lines[0] == "Mode: Default"
    assert lines[1] == f"registry.example.com: 0 of {total} items processed, {total} items with errors:"
    assert lines[2:5] == ["- source: deckhouse/containers/deckhouse",
                          "  image: registry.example.com/deckhouse/ee:v1.71.3",
                          "  error: 404 Not Found: the registry does not have this image"]
    assert len(lines) == 2 + 5 * 3 + 1 and lines[-1] == "...and more"
    assert result.state["ready"] is False


def test_message_with_exactly_five_errors_has_no_and_more():
    queue = {"processed": 1, "items": [], "retry": [{"image": f"r/x:{i}", "info": f"l{i}", "error": "e"}
                                                   for i in range(5)]}
    message = checker.build_message({"r": queue}, "Default")
    assert "...and more" not in message and message.count("- source:") == 5


def test_several_registries_are_sorted_in_the_message():
    queues = {"b": {"processed": 2, "items": [], "retry": []},
              "a": {"processed": 1, "items": [{"image": "a/x:1", "info": "l"}], "retry": []}}
    assert checker.build_message(queues, "Relax") == (
        "Mode: Relax\na: 1 of 2 items processed, 0 items with errors:\nb: all 2 items are checked")


def test_retries_move_back_and_wait_ten_seconds(example):
    missing = f"registry.example.com/deckhouse/ee@sha256:{'9c74831c911aa2e0120259045229886dcaba8db276721ca9dc55bf5a4f935139'}"
    client = FakeClient({missing: "404 Not Found: the registry does not have this image"})
    params = _params("registry.example.com")
    first = _run({}, params, example, client)
    queue = first.state["queues"]["registry.example.com"]
    assert [i["image"] for i in queue["retry"]] == [missing] and queue["items"] == []

    # next run: retries move back with last_attempt := now and are not checked yet
    client.asked.clear()
    second = _run(first.state, params, example, client, now=NOW + timedelta(seconds=30))
    queue = second.state["queues"]["registry.example.com"]
    assert client.asked == [] and queue["retry"] == []
    assert queue["items"][0]["error"].startswith("404") and queue["last_attempt"] == "2026-11-27T10:00:30Z"
    assert ("Retry items moved", {"registry": "registry.example.com", "items": 1}) in second.events
    assert "1 items with errors" in second.state["message"]

    # 9 s later: still waiting; 10 s later: checked again, and now the image is there
    early = _run(second.state, params, example, client, now=NOW + timedelta(seconds=39))
    assert client.asked == [] and early.state == second.state
    client.answers.clear()
    third = _run(second.state, params, example, client, now=NOW + timedelta(seconds=40))
    assert client.asked == [missing]
    assert third.state["ready"] is True
    total = checker.queue_totals(first.state["queues"]["registry.example.com"])[1]
    assert third.state["queues"]["registry.example.com"]["processed"] == total


def test_params_change_rebuilds_only_that_queue(example):
    params = _params("a.example.com", "b.example.com")
    client = FakeClient()
    state = _run({}, params, example, client).state
    assert state["ready"]
    changed = {**params, "version": "v2",
               "registries": {**params["registries"],
                              "b.example.com": {**params["registries"]["b.example.com"], "username": "u",
                                                "password": "p4ssw0rd"}}}
    client.asked.clear()
    result = _run(state, changed, example, client)
    assert all(image.startswith("b.example.com/") for image in client.asked), "queue a is kept"
    assert [e for e, f in result.events if e == "Added queue"] == ["Added queue"]
    assert result.state["version"] == "v2"


def test_check_mode_change_rebuilds_the_queue(example):
    params = _params("a.example.com")
    state = _run({}, params, example, FakeClient()).state
    result = _run(state, {**params, "checkMode": "Relax"}, example, FakeClient())
    assert result.state["message"] == "Mode: Relax\na.example.com: all 1 items are checked"


def test_removed_registry_is_dropped(example):
    state = _run({}, _params("a.example.com", "b.example.com"), example, FakeClient()).state
    result = _run(state, _params("a.example.com"), example, FakeClient())
    assert set(result.state["queues"]) == {"a.example.com"}
    assert ("Deleting queue", {"registry": "b.example.com"}) in result.events


def test_nothing_left_to_check_gives_the_same_state(example):
    params = _params("a.example.com")
    state = _run({}, params, example, FakeClient()).state
    again = _run(state, params, example, FakeClient(), now=NOW + timedelta(minutes=5))
    assert again.state == state and again.checked == 0


def test_budget_stops_the_run_and_progress_continues(example):
    client = FakeClient(delay=0.05)
    params = _params("a.example.com")
    started = time.monotonic()
    first = _run({}, params, example, client, budget=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.25, "the budget bounds the whole run"
    queue = first.state["queues"]["a.example.com"]
    total = queue["processed"] + len(queue["items"])
    assert 0 < queue["processed"] < total and queue["retry"] == []
    # unfinished items keep their label order and are not marked as errors
    assert [i["info"] for i in queue["items"]] == sorted(i["info"] for i in queue["items"])
    assert not any("error" in i for i in queue["items"])
    assert f"{queue['processed']} of {total} items processed, 0 items with errors:" in first.state["message"]
    state = first.state
    for _ in range(50):
        state = _run(state, params, example, client, budget=0.3).state
        if state["ready"]:
            break
    assert state["ready"] and state["queues"]["a.example.com"]["processed"] == total


def test_three_workers_per_registry(example):
    client = FakeClient(delay=0.02)
    _run({}, _params("a.example.com"), example, client)
    assert client.sessions == checker.WORKERS
    one = FakeClient(delay=0.02)
    _run({}, _params("a.example.com"), example, one, workers=1)
    assert one.sessions == 1


def test_a_hanging_check_cannot_hold_the_run(example):
    """A worker stuck where no timeout reaches (e.g. DNS) is abandoned after the grace period."""
    release = threading.Event()

    class Stuck(FakeClient):
        def check(self, image, deadline):
            release.wait(10)

    try:
        started = time.monotonic()
        result = _run({}, _params("a.example.com"), example, Stuck(), budget=0.2)
        assert time.monotonic() - started < 0.2 + 0.25
        queue = result.state["queues"]["a.example.com"]
        assert queue["processed"] == 0 and queue["retry"] == [] and queue["items"]
    finally:
        release.set()


def test_registry_wide_failure_is_not_repeated_for_every_image(example):
    """A black-holed or untrusted registry costs one attempt per worker, not one per image."""

    class Unreachable(FakeClient):
        def check(self, image, deadline):
            with self.lock:
                self.asked.append(image)
            time.sleep(0.05)
            raise checker_http.CheckError("connecting to the registry r timed out after 10s", registry_wide=True)

    client = Unreachable()
    result = _run({}, _params("a.example.com"), example, client)
    queue = result.state["queues"]["a.example.com"]
    assert len(client.asked) <= checker.WORKERS
    assert queue["items"] == [] and len(queue["retry"]) > 30
    assert {i["error"] for i in queue["retry"]} == {"connecting to the registry r timed out after 10s"}


def test_unexpected_exception_costs_one_item_not_the_run(example):
    class Buggy(FakeClient):
        def check(self, image, deadline):
            if image.endswith(":v1.71.3"):
                raise KeyError("boom")

    result = _run({}, _params("a.example.com"), example, Buggy())
    assert "internal checker error (KeyError)" in result.state["message"]
    assert "1 items with errors" in result.state["message"]


def test_metrics_cover_every_registry(example):
    result = _run({}, _params("a.example.com"), example, FakeClient(default="x"))
    records = checker.metrics(result.state, 1.23456)
    assert records[0] == {"action": "expire", "group": "d8_registry_checker"}
    by_name = {(r["name"], tuple(sorted((r.get("labels") or {}).items()))): r["value"] for r in records[1:]}
    queue = result.state["queues"]["a.example.com"]
    assert by_name[("d8_registry_checker_items", (("registry", "a.example.com"),))] == len(queue["retry"])
    assert by_name[("d8_registry_checker_items_processed", (("registry", "a.example.com"),))] == 0
    assert by_name[("d8_registry_checker_items_failed", (("registry", "a.example.com"),))] == len(queue["retry"])
    assert by_name[("d8_registry_checker_ready", ())] == 0
    assert by_name[("d8_registry_checker_run_duration_seconds", ())] == 1.235
    assert all(r.get("group") == "d8_registry_checker" for r in records)


# -- params and restore ------------------------------------------------------------------------

def test_valid_params_pass():
    assert checker.validate_params(_params("a.example.com", "10.0.0.1:5001", username="u", password="p")) == []
    assert checker.validate_params({}) == []


@pytest.mark.parametrize("params, fragment", [
    ({"registries": {"a": {"scheme": "HTTPS"}}}, "address"),
    ({"registries": {"a": {"address": "no-path.example.com"}}}, "address"),
    ({"registries": {"a": {"address": "a.example.com/UPPER"}}}, "address"),
    ({"registries": {"a": {"address": "a.example.com/x", "scheme": "ftp"}}}, "scheme"),
    ({"registries": {"a": {"address": "a.example.com/x", "username": "u"}}}, "go together"),
    ({"registries": {"a/b": {"address": "a.example.com/x"}}}, "values key"),
    ({"registries": {"a": {"address": "a.example.com/x", "extra": 1}}}, "unknown"),
    ({"checkMode": "Strict"}, "checkMode"),
    ({"registries": []}, "registries"),
    ("text", "object"),
])
def test_invalid_params_are_named_without_values(params, fragment):
    problems = checker.validate_params(params)
    assert problems and any(fragment in p for p in problems)


def test_params_problems_never_echo_credentials():
    problems = checker.validate_params({"registries": {"a": {"address": "x", "password": "Sup3r-secret"}}})
    assert problems and "Sup3r-secret" not in repr(problems)


def test_normalize_state_keeps_valid_and_drops_garbage():
    state = {"version": "v", "ready": True, "message": "m",
             "queues": {"r": {"processed": 2, "items": [{"image": "r/x:1", "info": "l", "extra": 1}],
                              "retry": [], "last_attempt": "2026-11-27T10:00:00+00:00", "params_hash": "h"}}}
    assert checker.normalize_state(state) == {
        "version": "v", "ready": True, "message": "m",
        "queues": {"r": {"processed": 2, "items": [{"image": "r/x:1", "info": "l"}], "retry": [],
                         "last_attempt": "2026-11-27T10:00:00Z", "params_hash": "h"}}}
    for broken in ([], {"queues": []}, {"queues": {"r": {"processed": -1}}}, {"queues": {"r": {"items": [1]}}},
                   {"queues": {"r": {"last_attempt": "yesterday"}}}):
        assert checker.normalize_state(broken) is None


@given(st.lists(st.sampled_from(["ok", "404", "timeout"]), min_size=1, max_size=30))
def test_counts_are_conserved_across_runs(outcomes):
    """processed + items + retry never changes for a queue, whatever the checks answer."""
    items = [{"image": f"r.example.com/d8@sha256:{i:064x}", "info": f"module/m/i{i}"} for i in range(len(outcomes))]
    queue = {"processed": 0, "items": items, "retry": [], "params_hash": checker.queue_params_hash(
        {"address": "r.example.com/d8"}, "Default")}
    answers = {item["image"]: (None if outcome == "ok" else outcome) for item, outcome in zip(items, outcomes,
                                                                                             strict=True)}
    state = {"queues": {"r": queue}}
    params = {"registries": {"r": {"address": "r.example.com/d8"}}}
    for run in range(4):
        state = checker.run(state, params, {}, [], NOW + timedelta(seconds=30 * run),
                            client_factory=lambda _r: FakeClient(answers)).state
        processed, total, _errors = checker.queue_totals(state["queues"]["r"])
        assert total == len(items)
    assert processed == outcomes.count("ok")
