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
"""Damaged secret material in the module's Secrets, of the kinds the reuse rules of SPEC 5.10/5.11 reject.

Shared by the hook tests (tests/hooks/test_restore_damaged.py) and the CLI test that simulates a dumped
cluster with these Secrets (tests/cli/test_simulate_damaged_secrets.py).
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta

# the hooks' clock in these tests and the simulator's first tick (sim/engine.py START)
NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
USER_SECRETS = ("registry-user-ro", "registry-user-rw", "registry-user-mirror-puller", "registry-user-mirror-pusher")
DAMAGE = ("ca_not_yet_valid", "ca_expiring", "ca_key_mismatch", "http_secret_short", "http_secret_symbols",
          "user_hash_not_verifying", "user_hash_other_cost", "user_hash_garbage", "user_password_missing",
          "user_password_short", "scraper_garbage")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _ca(not_before: datetime):
    from lib import pki

    ca, _ = pki.ensure_ca(None, not_before + pki.BACKDATE)
    return ca


def damage(objects: list[dict], kinds: set[str]) -> list[dict]:
    from lib import users

    objects = copy.deepcopy(objects)
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    data = secrets["registry-pki"]["data"]
    if "ca_not_yet_valid" in kinds:
        ca = _ca(NOW + timedelta(days=2))
        data["ca.crt"], data["ca.key"] = _b64(ca.cert), _b64(ca.key)
    if "ca_expiring" in kinds:
        from lib import pki

        ca = _ca(NOW - pki.CA_VALIDITY + timedelta(days=10))
        data["ca.crt"], data["ca.key"] = _b64(ca.cert), _b64(ca.key)
    if "ca_key_mismatch" in kinds:
        data["ca.key"] = _b64(_ca(NOW - timedelta(days=1)).key)
    if "http_secret_short" in kinds:
        data["http_secret"] = _b64("tooShort0123")
    if "http_secret_symbols" in kinds:
        data["http_secret"] = _b64("-" * users.HTTP_SECRET_LENGTH)
    if "scraper_garbage" in kinds and "scraper.crt" in data:
        data["scraper.crt"] = _b64("not a certificate")
    for name in USER_SECRETS:
        user = (secrets.get(name) or {}).get("data")
        if not user:
            continue
        password = base64.b64decode(user["password"]).decode()
        if "user_hash_not_verifying" in kinds:
            user["passwordHash"] = _b64(users.hash_password(password + "x"))
        if "user_hash_other_cost" in kinds:
            import bcrypt

            user["passwordHash"] = _b64(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode())
        if "user_hash_garbage" in kinds:
            user["passwordHash"] = _b64("not-a-hash")
        if "user_password_short" in kinds:
            user["password"] = _b64(password[:8])
        if "user_password_missing" in kinds:
            user.pop("password")
    return objects
