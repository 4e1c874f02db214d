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
"""Fixtures for hook tests: the example cluster and harnesses over the real module."""

from __future__ import annotations

import pytest
from d8registry import cluster as cluster_mod
from d8registry.operator.module import ModuleHarness


@pytest.fixture(scope="session")
def example_cluster():
    return cluster_mod.load()


@pytest.fixture
def make_harness(repo_root, example_cluster):
    """Build a harness over the real module for the example cluster with given registry settings."""

    def build(registry=None, *, in_process=True, cluster=None, env=None):
        base = cluster or example_cluster
        if registry is not None:
            base = base.with_registry_settings(registry)
        return ModuleHarness(repo_root, base.objects, base.globals, in_process=in_process,
                             env=env or {"REGISTRY_FAKE_NOW": "2026-11-27T10:00:00Z"})

    return build
