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
"""The only source of time for hooks, so tests and the simulator can pin it (REGISTRY_FAKE_NOW)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

FAKE_NOW_ENV = "REGISTRY_FAKE_NOW"


def now() -> datetime:
    fake = os.environ.get(FAKE_NOW_ENV)
    if fake:
        return parse_rfc3339(fake)
    return datetime.now(UTC).replace(microsecond=0)


def parse_rfc3339(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(now())
