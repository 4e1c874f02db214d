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
"""Registry users, their passwords and bcrypt hashes, the distribution HTTP secret, htpasswd (SPEC 5.11).

`bcrypt` is imported lazily: a run that reuses every user only pays for it when a hash is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .patterns import lazy

# state key -> user name (the name is also the suffix of the Secret `registry-user-<name>`)
USERS = {"ro": "ro", "rw": "rw", "mirror_puller": "mirror-puller", "mirror_pusher": "mirror-pusher"}

# string.ascii_letters + string.digits, spelled out: `string` and `secrets` cost a converged run several
# milliseconds of imports for nothing (issue #15); secrets is imported where a password is generated
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
PASSWORD_LENGTH = 24
MIN_REUSABLE_PASSWORD = 16
HTTP_SECRET_LENGTH = 32
# nginx checks the hash on every request; 24 random alphanumerics (~142 bits) make a high cost pointless.
BCRYPT_COST = 5
OWN_HASH_PREFIX = f"$2b${BCRYPT_COST:02d}$"
# bcrypt only reads the first 72 bytes of a password (libxcrypt in nginx included); bcrypt>=5
# refuses longer input instead of truncating, so we truncate ourselves to stay compatible.
BCRYPT_MAX_BYTES = 72
# A stored hash with a huge cost factor would stall the hook for minutes; such hashes are treated
# as not verifying, which makes ensure_user replace them.
MAX_VERIFY_COST = 12

_BCRYPT_HASH_RE = lazy(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}", re.ASCII)
_ALNUM = lazy(r"[A-Za-z0-9]+", re.ASCII)
# Same rule as the settings' username pattern: ':' ends the name in an htpasswd line, control
# characters would break the line structure.
_HTPASSWD_NAME_BAD = lazy(r"[:\x00-\x1f\x7f-\x9f]")


def random_password(length: int = PASSWORD_LENGTH) -> str:
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ValueError("users: password length must be a positive integer")
    import secrets

    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _password_bytes(password: str) -> bytes:
    raw = password.encode("utf-8")
    # crypt(3) stops at NUL, so nginx would check a different password than the one hashed here.
    if b"\x00" in raw:
        raise ValueError("users: a password must not contain NUL characters")
    return raw[:BCRYPT_MAX_BYTES]


def hash_password(password: str) -> str:
    if not isinstance(password, str) or not password:
        raise ValueError("users: a password must be a non-empty string")
    import bcrypt

    salt = bcrypt.gensalt(rounds=BCRYPT_COST, prefix=b"2b")
    return bcrypt.hashpw(_password_bytes(password), salt).decode("ascii")


# bcrypt's own base64 alphabet (not RFC 4648): a salt is 22 of these characters for 16 bytes.
_BCRYPT_B64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _bcrypt_b64(raw: bytes) -> str:
    bits = int.from_bytes(raw, "big") << 4  # 128 bits padded to 132 = 22 six-bit characters
    return "".join(_BCRYPT_B64[(bits >> (6 * i)) & 63] for i in reversed(range(22)))


def keyed_hash(password: str, key: str, context: str) -> str:
    """A bcrypt hash whose salt is derived from `key` (secret material the module keeps, e.g. the
    HTTP secret): the same password gives the same hash on every run and after every restart, so
    files carrying it do not change (SPEC 4.2, 4.10.2), while the salt stays unknown to outsiders."""
    import hashlib
    import hmac

    if not isinstance(password, str) or not password:
        raise ValueError("users: a password must be a non-empty string")
    if not isinstance(key, str) or not key:
        raise ValueError("users: a keyed hash needs secret key material")
    raw = _password_bytes(password)
    digest = hmac.new(key.encode("utf-8"), context.encode("utf-8") + b"\x00" + raw, hashlib.sha256).digest()
    import bcrypt

    salt = f"{OWN_HASH_PREFIX}{_bcrypt_b64(digest[:16])}".encode("ascii")
    return bcrypt.hashpw(raw, salt).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """True when the hash (`$2a$`/`$2b$`/`$2y$`) matches; garbage of any kind is simply False."""
    if not isinstance(password, str) or not isinstance(password_hash, str):
        return False
    match = _BCRYPT_HASH_RE.fullmatch(password_hash)
    if match is None or int(match.group(1)) > MAX_VERIFY_COST:
        return False
    try:
        raw = _password_bytes(password)
    except (ValueError, UnicodeError):
        return False
    import bcrypt

    try:
        return bcrypt.checkpw(raw, password_hash.encode("ascii"))
    except ValueError:  # a salt bcrypt itself rejects, e.g. cost below 4
        return False


def _reusable_password(password: Any) -> bool:
    return (
        isinstance(password, str)
        and len(password) >= MIN_REUSABLE_PASSWORD
        and _ALNUM.fullmatch(password) is not None
    )


def ensure_user(state_key: str, existing: dict | None) -> dict:
    """The user for `state_key`, reusing `existing` where SPEC 5.11 allows; always a fresh dict."""
    name = _user_name(state_key)
    if (
        isinstance(existing, dict)
        and existing.get("name") == name
        and _reusable_password(existing.get("password"))
    ):
        password = existing["password"]
        password_hash = existing.get("password_hash")
        # Only our own cost is kept: a verifying but slower hash (e.g. an installer's cost 10) would
        # cost nginx that much CPU on every request. Replacing it once does not touch the password.
        if isinstance(password_hash, str) and password_hash.startswith(OWN_HASH_PREFIX):
            if verify_password(password, password_hash):
                return {"name": name, "password": password, "password_hash": password_hash}
        return {"name": name, "password": password, "password_hash": hash_password(password)}
    password = random_password()
    return {"name": name, "password": password, "password_hash": hash_password(password)}


def with_usable_hash(user: dict) -> dict:
    """The user with its password kept and a hash of our cost that verifies it (SPEC 5.11): what a
    running data plane needs when a restored hash is damaged, without changing the password its
    clients already use. Always a fresh dict."""
    password, password_hash = user.get("password"), user.get("password_hash")
    if isinstance(password_hash, str) and password_hash.startswith(OWN_HASH_PREFIX) \
            and verify_password(password, password_hash):
        return dict(user)
    return {**user, "password_hash": hash_password(password)}


def ensure_users(state_keys: Iterable[str], existing: dict | None) -> dict:
    """Exactly the requested users (others are dropped), keyed by state key."""
    wanted = set(state_keys)
    for key in wanted:
        _user_name(key)
    current = existing if isinstance(existing, dict) else {}
    # USERS order keeps the result (and anything rendered from it) stable whatever order came in.
    return {key: ensure_user(key, current.get(key)) for key in USERS if key in wanted}


def _user_name(state_key: Any) -> str:
    if not isinstance(state_key, str) or state_key not in USERS:
        raise ValueError(f"users: unknown user key {state_key!r}; expected one of {', '.join(USERS)}")
    return USERS[state_key]


def ensure_http_secret(existing: str | None) -> str:
    if isinstance(existing, str) and len(existing) == HTTP_SECRET_LENGTH and _ALNUM.fullmatch(existing):
        return existing
    return random_password(HTTP_SECRET_LENGTH)


def htpasswd(users: Iterable[dict]) -> str:
    """nginx auth_basic_user_file content: `name:hash` per user, sorted by name."""
    # Errors name the position only: user names may be upstream credentials, which are never
    # echoed (SPEC 3.3), and hashes are secret material (SPEC 10.1).
    lines: dict[str, str] = {}
    for index, user in enumerate(users):
        name = user.get("name") if isinstance(user, dict) else None
        if not isinstance(name, str) or not name or _HTPASSWD_NAME_BAD.search(name):
            raise ValueError(f"users: htpasswd entry #{index} has an unusable user name")
        if name in lines:
            # nginx would silently honour only the first line; refuse rather than guess.
            raise ValueError(f"users: htpasswd entry #{index} repeats an earlier user name")
        password_hash = user.get("password_hash")
        if not isinstance(password_hash, str) or not _BCRYPT_HASH_RE.fullmatch(password_hash):
            raise ValueError(f"users: htpasswd entry #{index} has no bcrypt hash")
        lines[name] = password_hash
    return "".join(f"{name}:{lines[name]}\n" for name in sorted(lines))
