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
"""Cluster files and Helm's output are read through libyaml with a direct constructor (yamlload): it must
give exactly what yaml.safe_load / safe_load_all give, and the same error for what they refuse."""

from __future__ import annotations

import pytest
import yaml
from d8registry import cluster, yamlload

DOCUMENTS = [
    "objects: []\n",
    "",
    "# only a comment\n",
    "- 1\n- 0x1F\n- 0o17\n- 1_000\n- 1.5\n- 1e3\n- .inf\n- -.inf\n- yes\n- No\n- on\n- ~\n- null\n- ''\n- '01'\n",
    "when: 2026-11-27\nat: 2026-11-27T10:00:00Z\nblob: !!binary aGVsbG8=\nplain: !!str 10\n",
    "base: &base {a: 1, b: [1, 2]}\nsame: *base\nlist: [*base, *base]\n",
    "base: &base {a: 1, b: 2}\nmerged:\n  <<: *base\n  b: 3\n",
    "set: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\npairs: !!pairs [{a: 1}, {a: 2}]\n",
    "dup: 1\ndup: 2\n",
    "? [complex, key]\n: value\n",
    "key: = \n=: value\n",
    "a: !custom 1\n",
    "---\na: 1\n---\nb: 2\n",
    "a: [unclosed\n",
    "1: int key\n2.5: float key\ntrue: bool key\nnull: null key\n",
    "self: &self [1, *self]\n",
]


def _outcome(load, text):
    try:
        return "ok", load(text)
    except Exception as exc:  # noqa: BLE001 - the test compares whatever happens
        return type(exc).__name__, " ".join(str(exc).split())


@pytest.mark.parametrize("text", DOCUMENTS)
def test_parse_yaml_gives_what_safe_load_gives(text):
    # repr tells True from 1, a str from a date, and shows key order and a recursive list as [...]
    assert repr(_outcome(cluster.parse_yaml, text)) == repr(_outcome(yaml.safe_load, text))


MULTI = [
    "",
    "---\n",
    "a: 1\n---\nb: [1, 2]\n---\n# empty\n---\nc: &x {d: 1}\ne: *x\n",
    "---\na: &x 1\n---\nb: *x\n",       # an anchor does not reach into the next document
    "a: 1\n---\nb: [unclosed\n",
    "a: 1\n---\nb: !!set {x}\n",
    "---\n<<: {a: 1}\nb: 2\n",
]


@pytest.mark.parametrize("text", MULTI + DOCUMENTS)
def test_safe_load_all_gives_what_safe_load_all_gives(text):
    assert repr(_outcome(yamlload.safe_load_all, text)) == repr(_outcome(lambda t: list(yaml.safe_load_all(t)), text))


def test_an_alias_is_the_same_object_as_its_anchor():
    document = cluster.parse_yaml("base: &base {a: 1}\nsame: *base\n")
    assert document["same"] is document["base"]


def test_the_example_cluster_reads_the_same(repo_root):
    text = cluster.DEFAULT_CLUSTER.read_text(encoding="utf-8")
    assert cluster.parse_yaml(text) == yaml.safe_load(text)
