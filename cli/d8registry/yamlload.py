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
"""YAML read as yaml.safe_load reads it, faster: libyaml parses, and maps, lists and scalars are built straight
from its nodes (aliases give the same object, as with PyYAML's constructor). Anything else (merge keys, sets,
other tags) and every error is left to PyYAML's own constructor, so results and messages are the same."""

from __future__ import annotations

import functools

import yaml

_TAG = "tag:yaml.org,2002:"


@functools.cache
def _loader():
    """libyaml's safe loader with a direct constructor for plain data; None without libyaml."""
    if not hasattr(yaml, "CSafeLoader"):
        return None
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    class Loader(yaml.CSafeLoader):
        def build(self, node, made: dict):
            kind = type(node)
            if kind is ScalarNode:
                return node.value if node.tag == _TAG + "str" else self.yaml_constructors[node.tag](self, node)
            if id(node) in made:
                return made[id(node)]
            if kind is SequenceNode and node.tag == _TAG + "seq":
                out = made[id(node)] = []
                out.extend(self.build(item, made) for item in node.value)
                return out
            if kind is MappingNode and node.tag == _TAG + "map":
                mapping = made[id(node)] = {}
                for key, value in node.value:   # a merge key ('<<') has no constructor: KeyError
                    mapping[self.build(key, made)] = self.build(value, made)
                return mapping
            raise LookupError(node.tag)

    return Loader


def safe_load(text: str):
    """What yaml.safe_load(text) gives (or raises)."""
    loader_class = _loader()
    if loader_class is not None:
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            return None if node is None else loader.build(node, {})
        except Exception:  # noqa: BLE001 - whatever it is, PyYAML's own path decides (and words the error)
            pass
        finally:
            loader.dispose()
    return yaml.safe_load(text)


def safe_load_all(text: str) -> list:
    """What list(yaml.safe_load_all(text)) gives (or raises), every document built on its own."""
    loader_class = _loader()
    if loader_class is not None:
        loader = loader_class(text)
        try:
            documents = []
            while loader.check_node():
                documents.append(loader.build(loader.get_node(), {}))
            return documents
        except Exception:  # noqa: BLE001 - as in safe_load
            pass
        finally:
            loader.dispose()
    return list(yaml.safe_load_all(text))
