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
"""The only source of time for hooks, so tests and the simulator can pin it (REGISTRY_FAKE_NOW).

Besides datetimes, whole seconds since the epoch: a converged orchestrator run only compares times
the module wrote itself, and reading those as integers spares every such run the datetime import
(issue #15). `utc_seconds` reads only the UTC form the module writes and leaves anything else to
datetime, so both ways give the same answer.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .patterns import lazy

if TYPE_CHECKING:
    from datetime import datetime

FAKE_NOW_ENV = "REGISTRY_FAKE_NOW"
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"

# what rfc3339() and datetime.isoformat() of a whole-second UTC time print
_UTC_RE = lazy(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:Z|\+00:00)")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def now() -> datetime:
    from datetime import UTC, datetime

    fake = os.environ.get(FAKE_NOW_ENV)
    if fake:
        return parse_rfc3339(fake)
    return datetime.now(UTC).replace(microsecond=0)


def now_seconds() -> int:
    """now() as whole seconds since the epoch."""
    fake = os.environ.get(FAKE_NOW_ENV)
    if not fake:
        return int(time.time())
    seconds = utc_seconds(fake)
    return seconds if seconds is not None else int(parse_rfc3339(fake).timestamp())


def from_seconds(seconds: int) -> datetime:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def parse_rfc3339(text: str) -> datetime:
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def timestamp(text: str) -> float:
    """parse_rfc3339(text).timestamp()."""
    seconds = utc_seconds(text)
    return float(seconds) if seconds is not None else parse_rfc3339(text).timestamp()


def utc_seconds(text: str) -> int | None:
    """Seconds since the epoch of a whole-second UTC time as the module writes it ('...T10:00:00Z' or
    '...T10:00:00+00:00'); None for any other text, which callers hand to datetime instead."""
    match = _UTC_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (1 <= year and 1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    if not 1 <= day <= _MONTH_DAYS[month - 1] + (1 if month == 2 and leap else 0):
        return None
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def rfc3339(moment: datetime) -> str:
    from datetime import UTC

    return moment.astimezone(UTC).strftime(RFC3339)


def rfc3339_seconds(seconds: int) -> str:
    return time.strftime(RFC3339, time.gmtime(seconds))


def now_rfc3339() -> str:
    return rfc3339(now())
