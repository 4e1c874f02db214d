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
"""Shared test setup: import paths for the hooks' logic package and the CLI package."""

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO / "hooks", REPO / "cli"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

# CI runs a bounded number of examples; `make fuzz` raises it.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# The simulator's step memo (cli/d8registry/sim/bashible.py) for the whole session: one directory made by
# the process that starts the session, named in the environment before the xdist workers are spawned, so
# the workers, their simulators and every CLI subprocess they start share it. The same switches on the
# same example cluster are played by many tests; with the memo their node steps run once. Set
# D8REG_SIM_STEP_MEMO= (empty) to run every step in every test; tests that are about executions unset it.
STEP_MEMO_ENV = "D8REG_SIM_STEP_MEMO"


def pytest_configure(config):
    if STEP_MEMO_ENV not in os.environ and not hasattr(config, "workerinput"):
        import tempfile

        config._step_memo = tempfile.mkdtemp(prefix="d8registry-step-memo-")
        os.environ[STEP_MEMO_ENV] = config._step_memo


def pytest_unconfigure(config):
    made = getattr(config, "_step_memo", None)
    if made:
        import shutil

        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(STEP_MEMO_ENV, None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def helm_bin() -> str:
    """The Helm v3 CLI built by `make tools` (never a system-wide one)."""
    path = REPO / ".tools" / "bin" / "helm"
    if not path.exists():
        pytest.fail("Helm is missing: run `make tools` (the README's commands do it)")
    return str(path)


# `make test` runs the suite on several pytest-xdist workers (--dist loadgroup). Tests that share a fixed
# resource carry one xdist_group and so run on one worker, one after another: the loopback data plane
# (127.0.0.11-13:5001 and the LB), the one kube-apiserver + etcd of tests/apiserver, the bundle tree of
# tests/bundle (built once per worker that needs it). Everything under these paths gets its group here; a
# different group there would split the resource between workers, so it stops the collection.
XDIST_GROUPS = {
    "tests/e2e/": "loopback-dataplane",
    "tests/cli/test_up.py": "loopback-dataplane",
    "tests/apiserver/": "kube-apiserver",
    "tests/bundle/": "bundle",
}
# Groups whose tests own an address range and roots no other test uses (containerd in its own mount
# namespace), so they may run beside the shared loopback data plane, each on one worker.
DEDICATED_GROUPS = {
    "realdataplane": "tests/e2e/dataplane/test_real_dataplane_sim.py",  # 127.0.16.0/24, a netns per node
    "local_replicas": "tests/e2e/dataplane/test_local_replicas.py",     # 127.0.12.1-3
    "local_push": "tests/e2e/dataplane/test_local_push_ingress.py",    # 127.0.14.1-3
    "local_up": "tests/cli/test_up.py",                                 # 127.0.12.21-29
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = Path(item.path).resolve().relative_to(REPO).as_posix()
        group = next((g for prefix, g in XDIST_GROUPS.items() if rel.startswith(prefix)), None)
        if group is None:
            continue
        given = {(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        dedicated = {g for g in given if DEDICATED_GROUPS.get(g) == rel}
        if given - {group} - dedicated:
            raise pytest.UsageError(f"{item.nodeid}: xdist_group {sorted(given)}; tests under {rel.split('/')[1]} "
                                    f"share one resource and must use xdist_group({group!r})")
        if not given:
            item.add_marker(pytest.mark.xdist_group(group))
    if getattr(config.option, "loadgroup", False):
        _suffix_groups(items)


def _suffix_groups(items) -> None:
    """--dist loadgroup schedules by an '@<group>' suffix of the node ids the workers report. pytest-xdist
    3.8 writes it to Item._nodeid, which pytest 9 no longer reads (Node.nodeid comes from Node._id), so
    every group would be scattered over the workers: the suffix is written where pytest 9 reads it."""
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)
