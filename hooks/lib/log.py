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
"""JSON-lines logging to stderr; stdout stays empty because the SDK writes results to files."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO


class Logger:
    def __init__(self, hook: str, stream: TextIO | None = None):
        self.hook = hook
        self._stream = stream

    def _emit(self, level: str, msg: str, fields: dict[str, Any]) -> None:
        record = {"level": level, "msg": msg, "hook": self.hook}
        record.update(fields)
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        stream.flush()

    def info(self, msg: str, **fields: Any) -> None:
        self._emit("info", msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self._emit("warn", msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._emit("error", msg, fields)
