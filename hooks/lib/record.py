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
"""Immutable records: tuples with named fields, written out by hand.

typing.NamedTuple builds each class at import by generating and compiling code; with nine of them every
hook run spent about as long creating record classes as doing its work (issue #15). A Record subclass is
an ordinary class statement, compiled once into the bytecode cache. It behaves as the NamedTuple did:
a tuple (equality, hashing, unpacking, copy and pickle) with read-only named fields.

    class Master(Record):
        __slots__ = ()
        _fields = ("name", "ip")
        name, ip = fields(2)

        def __new__(cls, name: str, ip: str):
            return tuple.__new__(cls, (name, ip))
"""

from __future__ import annotations

from operator import itemgetter


def fields(count: int) -> tuple[property, ...]:
    """Read-only properties for positions 0..count-1, in the order of the class's _fields."""
    return tuple(property(itemgetter(index)) for index in range(count))


class Record(tuple):
    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __getnewargs__(self):
        # copy and pickle call __new__ with these, one argument per field
        return tuple(self)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({inner})"

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self, strict=True))

    def _replace(self, **changes):
        return type(self)(**{**self._asdict(), **changes})
