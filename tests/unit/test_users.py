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
"""hooks/lib/users.py: passwords, bcrypt hashes, reuse rules, HTTP secret and htpasswd (SPEC 5.11)."""

import re
import shutil
import subprocess
import time

import bcrypt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lib import users

ALNUM = re.compile(r"[A-Za-z0-9]+")
OWN_HASH = re.compile(r"\$2b\$05\$[./A-Za-z0-9]{53}")
# Made once: every hash costs a few milliseconds.
PASSWORD = "Abcdefghijklmnopqrstuv12"
PASSWORD_HASH = users.hash_password(PASSWORD)


def user(key, password=PASSWORD, password_hash=PASSWORD_HASH, name=None):
    return {"name": name or users.USERS[key], "password": password, "password_hash": password_hash}


def test_user_table():
    assert users.USERS == {
        "ro": "ro",
        "rw": "rw",
        "mirror_puller": "mirror-puller",
        "mirror_pusher": "mirror-pusher",
    }


# --- passwords ----------------------------------------------------------------------------------


def test_random_password_shape():
    password = users.random_password()
    assert len(password) == 24 and ALNUM.fullmatch(password)
    assert len(users.random_password(40)) == 40


def test_random_passwords_use_the_whole_alphabet_and_differ():
    drawn = [users.random_password() for _ in range(300)]
    assert len(set(drawn)) == len(drawn)
    # 7200 draws from 62 symbols: a missing symbol would point at a broken alphabet, not bad luck.
    assert set("".join(drawn)) == set(users.ALPHABET) and len(users.ALPHABET) == 62


def test_random_password_draws_from_secrets(monkeypatch):
    calls = []

    def fake_choice(alphabet):
        calls.append(alphabet)
        return "x"

    import secrets  # users imports it where a password is generated

    monkeypatch.setattr(secrets, "choice", fake_choice)
    assert users.random_password() == "x" * 24
    assert len(calls) == 24 and set(calls) == {users.ALPHABET}


@pytest.mark.parametrize("length", [0, -1, 2.5, "24", True])
def test_random_password_rejects_bad_lengths(length):
    with pytest.raises(ValueError):
        users.random_password(length)


# --- hashing ------------------------------------------------------------------------------------


def test_hash_is_bcrypt_2b_cost_5_and_verifies():
    assert OWN_HASH.fullmatch(PASSWORD_HASH)
    assert bcrypt.checkpw(PASSWORD.encode(), PASSWORD_HASH.encode())
    assert users.verify_password(PASSWORD, PASSWORD_HASH)
    assert not users.verify_password(PASSWORD + "x", PASSWORD_HASH)
    # Salted: the same password never yields the same hash twice.
    assert users.hash_password(PASSWORD) != PASSWORD_HASH


def test_other_bcrypt_prefixes_verify():
    # $2y$ (apache2-utils htpasswd, PHP) and $2a$ use the same algorithm for these passwords.
    for prefix in ("$2y$", "$2a$"):
        assert users.verify_password(PASSWORD, prefix + PASSWORD_HASH[4:])


@pytest.mark.parametrize("password", ["\u043f\u0430\u0440\u043e\u043b\u044c-ü", "p" * 72, "p" * 73 + "tail", "a" * 1024, " spaces inside "])
def test_unusual_passwords_round_trip(password):
    password_hash = users.hash_password(password)
    assert OWN_HASH.fullmatch(password_hash)
    assert users.verify_password(password, password_hash)


def test_long_passwords_follow_bcrypt_72_byte_rule():
    # nginx's crypt(3) ignores everything after byte 72; hashing must agree with it.
    password_hash = users.hash_password("p" * 80)
    assert bcrypt.checkpw(b"p" * 72, password_hash.encode())
    assert users.verify_password("p" * 72 + "different tail", password_hash)


@pytest.mark.parametrize("password", ["", None, b"bytes", 42, "nul\x00inside"])
def test_hash_password_rejects_unusable_input(password):
    with pytest.raises(ValueError) as raised:
        users.hash_password(password)
    assert "inside" not in str(raised.value)


@pytest.mark.parametrize(
    "password_hash",
    [
        None,
        "",
        "garbage",
        42,
        PASSWORD_HASH.encode(),
        PASSWORD_HASH[:-1],
        PASSWORD_HASH + "x",
        "$2b$05$",
        "$2x$" + PASSWORD_HASH[4:],
        "$2b$03$" + PASSWORD_HASH[7:],
        "$2b$99$" + PASSWORD_HASH[7:],
        "$1$abc$def",
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        PASSWORD,
        " " + PASSWORD_HASH,
        "$2b$05$" + "é" * 53,
    ],
    # ids without the random salt: every pytest-xdist worker must collect the same test ids
    ids=lambda value: re.sub(r"[./A-Za-z0-9]{50,}", lambda m: f"<{len(m.group())} chars>", str(value)),
)
def test_verify_password_never_raises_on_garbage(password_hash):
    assert users.verify_password(PASSWORD, password_hash) is False


def test_verify_password_refuses_huge_costs_quickly():
    # A real hash at cost 31 would take days to check; it must be refused without trying.
    started = time.monotonic()
    assert users.verify_password(PASSWORD, "$2b$31$" + PASSWORD_HASH[7:]) is False
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("password", [None, 42, b"bytes", "nul\x00", "\ud800"])
def test_verify_password_never_raises_on_garbage_passwords(password):
    assert users.verify_password(password, PASSWORD_HASH) is False


@given(
    password=st.text(max_size=100),
    password_hash=st.one_of(
        st.text(max_size=80), st.from_regex(r"\$2[abxy]\$0[4-6]\$[./A-Za-z0-9]{50,55}", fullmatch=True)
    ),
)
def test_property_verify_password_is_total(password, password_hash):
    assert isinstance(users.verify_password(password, password_hash), bool)


if shutil.which("htpasswd"):

    def test_apache_htpasswd_2y_hash_verifies():
        out = subprocess.run(
            ["htpasswd", "-nbB", "-C", "5", "someone", PASSWORD], capture_output=True, text=True, check=True
        )
        name, _, password_hash = out.stdout.strip().partition(":")
        assert name == "someone" and password_hash.startswith("$2y$05$")
        assert users.verify_password(PASSWORD, password_hash)
        assert not users.verify_password(PASSWORD + "x", password_hash)


# --- users --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(users.USERS))
def test_fresh_user(key):
    made = users.ensure_user(key, None)
    assert set(made) == {"name", "password", "password_hash"}
    assert made["name"] == users.USERS[key]
    assert len(made["password"]) == 24 and ALNUM.fullmatch(made["password"])
    assert OWN_HASH.fullmatch(made["password_hash"])
    assert bcrypt.checkpw(made["password"].encode(), made["password_hash"].encode())


def test_valid_user_is_reused_unchanged():
    existing = user("mirror_puller")
    kept = users.ensure_user("mirror_puller", existing)
    assert kept == existing
    # A copy: callers may edit the result without touching the values it came from.
    assert kept is not existing
    assert users.ensure_user("mirror_puller", kept) == existing


@pytest.mark.parametrize("password", ["A" * 16, "Zz9" * 20])
def test_any_long_enough_alphanumeric_password_is_kept(password):
    existing = user("rw", password=password, password_hash=users.hash_password(password))
    assert users.ensure_user("rw", existing) == existing


@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(user("ro", name="rw"), id="other user's name"),
        pytest.param(user("ro", name="RO"), id="name differs in case"),
        pytest.param({**user("ro"), "name": None}, id="no name"),
        pytest.param(user("ro", password="A" * 15), id="15 characters"),
        pytest.param(user("ro", password="Abcdefghijklmnop-rst"), id="dash"),
        pytest.param(user("ro", password="Abcdefghijklmnopé"), id="non-ascii letter"),
        pytest.param(user("ro", password="Abcdefghijklmnop٣"), id="non-ascii digit"),
        pytest.param(user("ro", password="Abcdefghijklmnopq\n"), id="newline"),
        pytest.param(user("ro", password=12345678901234567890), id="number"),
        pytest.param({"name": "ro", "password_hash": PASSWORD_HASH}, id="no password"),
        pytest.param({}, id="empty"),
        pytest.param("ro:secret", id="string"),
        pytest.param(["ro"], id="list"),
    ],
)
def test_user_regenerated_when_not_reusable(existing):
    made = users.ensure_user("ro", existing)
    assert made["name"] == "ro"
    assert made["password"] != (existing.get("password") if isinstance(existing, dict) else None)
    assert len(made["password"]) == 24 and ALNUM.fullmatch(made["password"])
    assert users.verify_password(made["password"], made["password_hash"])


@pytest.mark.parametrize(
    "password_hash",
    [
        pytest.param(users.hash_password("another password"), id="hash of another password"),
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
        pytest.param(
            bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode(), id="verifies, cost 6"
        ),
        pytest.param("$2y$" + PASSWORD_HASH[4:], id="verifies, $2y$"),
    ],
)
def test_hash_recomputed_but_password_kept(password_hash):
    made = users.ensure_user("rw", user("rw", password_hash=password_hash))
    assert made["password"] == PASSWORD
    assert made["password_hash"] != password_hash and OWN_HASH.fullmatch(made["password_hash"])
    assert users.verify_password(PASSWORD, made["password_hash"])


@pytest.mark.parametrize("key", ["admin", "mirror-puller", "", None, 1])
def test_unknown_user_key(key):
    with pytest.raises(ValueError, match="unknown user key"):
        users.ensure_user(key, None)


def test_ensure_users_returns_exactly_the_requested_users():
    existing = {"ro": user("ro"), "rw": user("rw"), "mirror_pusher": user("mirror_pusher")}
    made = users.ensure_users(["mirror_puller", "ro"], existing)
    assert list(made) == ["ro", "mirror_puller"]
    assert made["ro"] == existing["ro"]
    assert made["mirror_puller"]["name"] == "mirror-puller"
    assert made["mirror_puller"]["password"] != PASSWORD

    everyone = users.ensure_users(tuple(users.USERS), made)
    assert list(everyone) == list(users.USERS)
    assert everyone["ro"] == existing["ro"] and everyone["mirror_puller"] == made["mirror_puller"]
    # A re-run on its own output changes nothing.
    assert users.ensure_users(users.USERS, everyone) == everyone
    assert users.ensure_users([], everyone) == {}


@pytest.mark.parametrize("existing", [None, "garbage", [], {"ro": "garbage"}])
def test_ensure_users_tolerates_garbage_state(existing):
    made = users.ensure_users({"ro"}, existing)
    assert list(made) == ["ro"] and users.verify_password(made["ro"]["password"], made["ro"]["password_hash"])


def test_ensure_users_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown user key"):
        users.ensure_users(["ro", "root"], None)


_existing_users = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["ro", "rw", "RO", "", None, 5]),
        "password": st.one_of(
            st.text(max_size=30), st.just(PASSWORD), st.from_regex(r"[A-Za-z0-9]{14,20}", fullmatch=True)
        ),
        "password_hash": st.one_of(st.text(max_size=70), st.just(PASSWORD_HASH)),
    },
)


@given(existing=st.one_of(st.none(), _existing_users, st.text(max_size=5)))
def test_property_ensure_user(existing):
    made = users.ensure_user("ro", existing)
    assert made["name"] == "ro" and users.verify_password(made["password"], made["password_hash"])
    assert len(made["password"]) >= 16 and ALNUM.fullmatch(made["password"])
    if (
        isinstance(existing, dict)
        and existing.get("name") == "ro"
        and made["password"] == existing.get("password")
    ):
        assert len(existing["password"]) >= 16
    # Convergence: the result is always reused as is.
    assert users.ensure_user("ro", made) == made


# --- HTTP secret --------------------------------------------------------------------------------


def test_http_secret_fresh_and_reused():
    secret = users.ensure_http_secret(None)
    assert len(secret) == 32 and ALNUM.fullmatch(secret)
    assert users.ensure_http_secret(secret) == secret


@pytest.mark.parametrize(
    "existing", ["", "a" * 31, "a" * 33, "a" * 31 + "-", "a" * 31 + "é", 42, ["a" * 32], None]
)
def test_http_secret_regenerated_when_malformed(existing):
    secret = users.ensure_http_secret(existing)
    assert secret != existing and len(secret) == 32 and ALNUM.fullmatch(secret)


# --- htpasswd -----------------------------------------------------------------------------------


def test_htpasswd_lines_are_sorted_and_verify():
    made = users.ensure_users(users.USERS, None)
    text = users.htpasswd(made.values())
    assert text.endswith("\n") and not text.endswith("\n\n")
    lines = text.splitlines()
    assert [line.partition(":")[0] for line in lines] == ["mirror-puller", "mirror-pusher", "ro", "rw"]
    by_name = {u["name"]: u for u in made.values()}
    for line in lines:
        name, _, password_hash = line.partition(":")
        assert bcrypt.checkpw(by_name[name]["password"].encode(), password_hash.encode())
        assert by_name[name]["password"] not in line


def test_htpasswd_of_nobody_is_empty():
    assert users.htpasswd([]) == ""


def test_htpasswd_accepts_upstream_style_names():
    # In-cluster proxy lines carry the upstream user name, which may hold '@', spaces or unicode.
    text = users.htpasswd([{"name": "robot$ci@corp pull", "password_hash": PASSWORD_HASH}])
    assert text == f"robot$ci@corp pull:{PASSWORD_HASH}\n"


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([{"name": "bad:name", "password_hash": PASSWORD_HASH}], id="colon"),
        pytest.param([{"name": "bad\nname", "password_hash": PASSWORD_HASH}], id="newline"),
        pytest.param([{"name": "", "password_hash": PASSWORD_HASH}], id="empty name"),
        pytest.param([{"password_hash": PASSWORD_HASH}], id="no name"),
        pytest.param([{"name": "secretname", "password_hash": PASSWORD}], id="plain password"),
        pytest.param([{"name": "secretname", "password_hash": ""}], id="empty hash"),
        pytest.param([{"name": "secretname"}], id="no hash"),
        pytest.param([user("ro"), user("ro")], id="duplicate"),
        pytest.param(["secretname:" + PASSWORD_HASH], id="not a dict"),
    ],
)
def test_htpasswd_rejects_unsafe_entries_without_echoing_them(entries):
    with pytest.raises(ValueError, match="htpasswd entry") as raised:
        users.htpasswd(entries)
    message = str(raised.value)
    assert "secretname" not in message and PASSWORD not in message and "$2b$" not in message


def test_keyed_hash_is_stable_verifies_and_depends_on_the_key():
    first = users.keyed_hash("upstream-password", "http-secret-a", "incluster-proxy")
    assert first == users.keyed_hash("upstream-password", "http-secret-a", "incluster-proxy")
    assert users.verify_password("upstream-password", first)
    assert not users.verify_password("other-password", first)
    assert first != users.keyed_hash("upstream-password", "http-secret-b", "incluster-proxy")
    assert first != users.keyed_hash("upstream-password", "http-secret-a", "another-use")
    with pytest.raises(ValueError):
        users.keyed_hash("upstream-password", "", "incluster-proxy")
