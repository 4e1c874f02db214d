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
"""hooks/lib/pki.py: generated fields, reuse and regeneration rules (SPEC 5.10).

Also the property target `pki.reuse` (SPEC 10.3).
"""

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lib import pki

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DNS, IPS = pki.front_names("cluster.local", "10.0.0.5")
PROXY_DNS, PROXY_IPS = pki.front_names("cluster.local", None)


# --- material builders (independent of the code under test) ------------------------------------


def ec_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def key_pem(key, password=None):
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def build_cert(
    key,
    *,
    cn="registry-ca",
    issuer_key=None,
    issuer_cn=None,
    not_before=NOW - DAY,
    not_after=NOW + 3650 * DAY,
    ca=True,
    key_usage=None,
    eku=None,
    dns=(),
    ips=(),
):
    """A certificate for `key`, self-signed unless `issuer_key` is given."""
    issuer_key = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    sans = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def usage(*, cert_sign):
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def leaf_by(
    issuer_key, key, *, dns=DNS, ips=IPS, not_after=NOW + 365 * DAY, not_before=NOW - DAY, eku="server"
):
    return build_cert(
        key,
        cn="registry-front",
        issuer_key=issuer_key,
        issuer_cn="registry-ca",
        not_before=not_before,
        not_after=not_after,
        ca=False,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH] if eku == "server" else eku,
        dns=dns,
        ips=ips,
    )


def load(pem):
    return x509.load_pem_x509_certificate(pem.encode())


# A few keys made once: key generation is the only slow part of these tests.
CA_KEY, OTHER_CA_KEY, LEAF_KEY, OTHER_KEY = (ec_key() for _ in range(4))
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
CA = pki.KeyPair(cert_pem(build_cert(CA_KEY)), key_pem(CA_KEY))
OTHER_CA = pki.KeyPair(cert_pem(build_cert(OTHER_CA_KEY)), key_pem(OTHER_CA_KEY))
LEAF = pki.KeyPair(cert_pem(leaf_by(CA_KEY, LEAF_KEY)), key_pem(LEAF_KEY))
GARBAGE = [
    "",
    "garbage",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "\ud800",
    "é" * 10,
]


# --- CA -----------------------------------------------------------------------------------------


def test_fresh_ca_has_the_specified_fields():
    ca, generated = pki.ensure_ca(None, NOW)
    assert generated
    cert = load(ca.cert)
    key = serialization.load_pem_private_key(ca.key.encode(), password=None)

    assert ca.key.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS8, unencrypted
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject.rfc4514_string() == "CN=registry-ca" and cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.signature_hash_algorithm.name == "sha256"
    # Backdated an hour so nodes whose clock lags the hook's accept it at once.
    assert cert.not_valid_before_utc == NOW - timedelta(hours=1)
    assert cert.not_valid_after_utc == NOW + 3650 * DAY
    assert 0 < cert.serial_number < 2**128

    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.key_cert_sign and key_usage.crl_sign and not key_usage.digital_signature
    assert pki.ca_is_reusable(ca.cert, ca.key, NOW)


def test_serials_are_random():
    serials = {load(pki.ensure_ca(None, NOW)[0].cert).serial_number for _ in range(3)}
    assert len(serials) == 3


def test_valid_ca_is_reused_unchanged():
    ca, generated = pki.ensure_ca(CA, NOW)
    assert ca is CA and not generated
    # The values shape {cert, key} is accepted as well.
    ca, generated = pki.ensure_ca(CA.to_dict(), NOW)
    assert ca == CA and not generated


def _ca_cases():
    def ca(**kw):
        return cert_pem(build_cert(CA_KEY, **kw))

    own = key_pem(CA_KEY)
    return (
        [
            ("valid", CA.cert, CA.key, True),
            ("exactly 30 days left", ca(not_after=NOW + 30 * DAY), own, True),
            ("29 days left", ca(not_after=NOW + 29 * DAY), own, False),
            ("expired", ca(not_before=NOW - 4000 * DAY, not_after=NOW - DAY), own, False),
            ("not yet valid", ca(not_before=NOW + DAY), own, False),
            ("key of another CA", CA.cert, OTHER_CA.key, False),
            ("not a CA", ca(ca=False), own, False),
            ("no basicConstraints", ca(ca=None), own, False),
            ("keyUsage without certSign", ca(key_usage=usage(cert_sign=False)), own, False),
            ("keyUsage with certSign", ca(key_usage=usage(cert_sign=True)), own, True),
            ("bundle of two certificates", CA.cert + OTHER_CA.cert, own, False),
            ("encrypted key", CA.cert, key_pem(CA_KEY, b"secret"), False),
            ("key missing", CA.cert, None, False),
            ("cert missing", None, own, False),
            ("rsa-2048 CA (adopted)", cert_pem(build_cert(RSA_KEY)), key_pem(RSA_KEY), True),
            ("ed25519 CA", cert_pem(build_cert(ED_KEY)), key_pem(ED_KEY), False),
            ("P-192 key", *(lambda k: (cert_pem(build_cert(k)), key_pem(k)))(ec_key(ec.SECP192R1())), False),
            ("key in the cert slot", CA.key, CA.key, False),
            ("cert in the key slot", CA.cert, CA.cert, False),
            ("bytes instead of text", CA.cert.encode(), own.encode(), False),
        ]
        + [(f"garbage cert {i}", g, own, False) for i, g in enumerate(GARBAGE)]
        + [(f"garbage key {i}", CA.cert, g, False) for i, g in enumerate(GARBAGE)]
    )


@pytest.mark.parametrize(
    ("cert", "key", "reusable"), [c[1:] for c in _ca_cases()], ids=[c[0] for c in _ca_cases()]
)
def test_ca_reuse_rule(cert, key, reusable):
    assert pki.ca_is_reusable(cert, key, NOW) is reusable
    ca, generated = pki.ensure_ca(pki.KeyPair(cert, key), NOW)
    assert generated is not reusable
    if reusable:
        assert ca == pki.KeyPair(cert, key)
    else:
        assert pki.ca_is_reusable(ca.cert, ca.key, NOW) and ca.key != key


def test_naive_now_is_a_caller_bug():
    with pytest.raises(TypeError):
        pki.ca_is_reusable(CA.cert, CA.key, datetime(2026, 1, 1))


def test_other_timezones_are_accepted():
    from datetime import timezone

    assert pki.ca_is_reusable(CA.cert, CA.key, NOW.astimezone(timezone(timedelta(hours=3))))


# --- SANs ---------------------------------------------------------------------------------------


def test_front_names():
    assert pki.front_names("cluster.local", "192.168.1.10") == (
        ["registry.d8-system.svc", "registry.d8-system.svc.cluster.local", "localhost"],
        ["127.0.0.1", "192.168.1.10"],
    )
    assert pki.front_names("corp.example", None) == (
        ["registry.d8-system.svc", "registry.d8-system.svc.corp.example", "localhost"],
        ["127.0.0.1"],
    )
    # A master on loopback must not list the address twice.
    assert pki.front_names("cluster.local", "127.0.0.1")[1] == ["127.0.0.1"]


@pytest.mark.parametrize(
    "ip", ["fd00::1", "::ffff:10.0.0.1", "10.0.0", "010.0.0.1", " 10.0.0.1", "10.0.0.1/32", "", 167772161]
)
def test_front_names_rejects_non_ipv4(ip):
    with pytest.raises(ValueError, match="IP|IPv4"):
        pki.front_names("cluster.local", ip)


@pytest.mark.parametrize(
    "domain", ["", ".", "cluster.local.", "a..b", "bad_domain", "exa mple", "\u043a\u043b\u0430\u0441\u0442\u0435\u0440", None]
)
def test_front_names_rejects_bad_cluster_domain(domain):
    with pytest.raises(ValueError, match="cluster domain"):
        pki.front_names(domain, None)


# --- leaf ---------------------------------------------------------------------------------------


def _sans(cert):
    value = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return value.get_values_for_type(x509.DNSName), [
        str(i) for i in value.get_values_for_type(x509.IPAddress)
    ]


@pytest.mark.parametrize(
    ("dns", "ips"), [(DNS, IPS), (PROXY_DNS, PROXY_IPS)], ids=["master", "incluster-proxy"]
)
def test_fresh_leaf_has_the_specified_fields(dns, ips):
    ca, _ = pki.ensure_ca(None, NOW)
    leaf, reused = pki.ensure_leaf(ca, None, dns, ips, NOW)
    assert not reused
    cert, ca_cert = load(leaf.cert), load(ca.cert)
    key = serialization.load_pem_private_key(leaf.key.encode(), password=None)

    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject.rfc4514_string() == "CN=registry-front"
    assert cert.issuer == ca_cert.subject
    cert.verify_directly_issued_by(ca_cert)
    assert _sans(cert) == (dns, ips)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc == NOW - timedelta(hours=1)
    assert cert.not_valid_after_utc == NOW + 1825 * DAY
    assert 0 < cert.serial_number < 2**128
    assert pki.leaf_is_reusable(ca, leaf.cert, leaf.key, dns, ips, NOW)


def test_leaf_validity_is_capped_by_the_ca():
    ca_end = NOW + 700 * DAY
    ca = pki.KeyPair(cert_pem(build_cert(CA_KEY, not_after=ca_end)), key_pem(CA_KEY))
    leaf, _ = pki.ensure_leaf(ca, None, DNS, IPS, NOW)
    assert load(leaf.cert).not_valid_after_utc == ca_end - timedelta(hours=1)


def test_leaf_needs_a_usable_ca():
    dying = pki.KeyPair(cert_pem(build_cert(CA_KEY, not_after=NOW + timedelta(minutes=30))), key_pem(CA_KEY))
    with pytest.raises(ValueError, match="expires too soon"):
        pki.ensure_leaf(dying, None, DNS, IPS, NOW)
    mismatched = pki.KeyPair(CA.cert, OTHER_CA.key)
    with pytest.raises(ValueError, match="CA") as raised:
        pki.ensure_leaf(mismatched, None, DNS, IPS, NOW)
    assert "PRIVATE KEY" not in str(raised.value) and OTHER_CA.key not in repr(raised.value)


def test_leaf_rejects_non_ipv4_sans():
    with pytest.raises(ValueError, match="IPv4"):
        pki.ensure_leaf(CA, None, DNS, ["127.0.0.1", "fd00::1"], NOW)
    assert not pki.leaf_is_reusable(CA, LEAF.cert, LEAF.key, DNS, ["fd00::1"], NOW)


def test_valid_leaf_is_reused_unchanged():
    leaf, reused = pki.ensure_leaf(CA, LEAF, list(reversed(DNS)), list(reversed(IPS)), NOW)
    assert leaf is LEAF and reused
    leaf, reused = pki.ensure_leaf(CA, LEAF.to_dict(), DNS, IPS, NOW)
    assert leaf == LEAF and reused


def _leaf_cases():
    def leaf(**kw):
        return cert_pem(leaf_by(CA_KEY, LEAF_KEY, **kw))

    own = key_pem(LEAF_KEY)
    return (
        [
            ("valid", CA, LEAF.cert, own, True),
            ("missing DNS SAN", CA, leaf(dns=DNS[:-1]), own, False),
            ("missing IP SAN", CA, leaf(ips=IPS[:1]), own, False),
            ("extra DNS SAN", CA, leaf(dns=[*DNS, "evil.example"]), own, False),
            ("extra IP SAN", CA, leaf(ips=[*IPS, "10.9.9.9"]), own, False),
            ("names of another master", CA, leaf(ips=["127.0.0.1", "10.0.0.6"]), own, False),
            ("in-cluster proxy names", CA, leaf(ips=PROXY_IPS), own, False),
            ("IPv6 SAN in addition", CA, leaf(ips=[*IPS, "::1"]), own, False),
            ("no SAN at all", CA, leaf(dns=(), ips=()), own, False),
            ("issued by another CA", OTHER_CA, LEAF.cert, own, False),
            ("forged: other key, our CA name", CA, cert_pem(leaf_by(OTHER_CA_KEY, LEAF_KEY)), own, False),
            ("self-signed", CA, cert_pem(leaf_by(LEAF_KEY, LEAF_KEY)), own, False),
            ("the CA itself", CA, CA.cert, CA.key, False),
            ("expired", CA, leaf(not_before=NOW - 2000 * DAY, not_after=NOW - DAY), own, False),
            ("29 days left", CA, leaf(not_after=NOW + 29 * DAY), own, False),
            ("exactly 30 days left", CA, leaf(not_after=NOW + 30 * DAY), own, True),
            ("not yet valid", CA, leaf(not_before=NOW + DAY), own, False),
            ("clientAuth only", CA, leaf(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), own, False),
            ("no extKeyUsage", CA, leaf(eku=None), own, False),
            ("key of another cert", CA, LEAF.cert, key_pem(OTHER_KEY), False),
            ("bundle", CA, LEAF.cert + CA.cert, own, False),
            ("garbage CA", pki.KeyPair("garbage", "garbage"), LEAF.cert, own, False),
            ("no CA", None, LEAF.cert, own, False),
            ("cert missing", CA, None, own, False),
            ("key missing", CA, LEAF.cert, None, False),
        ]
        + [(f"garbage cert {i}", CA, g, own, False) for i, g in enumerate(GARBAGE)]
        + [(f"garbage key {i}", CA, LEAF.cert, g, False) for i, g in enumerate(GARBAGE)]
    )


@pytest.mark.parametrize(
    ("ca", "cert", "key", "reusable"), [c[1:] for c in _leaf_cases()], ids=[c[0] for c in _leaf_cases()]
)
def test_leaf_reuse_rule(ca, cert, key, reusable):
    assert pki.leaf_is_reusable(ca, cert, key, DNS, IPS, NOW) is reusable
    if ca is None or not pki.ca_is_reusable(ca.cert, ca.key, NOW):
        return
    leaf, reused = pki.ensure_leaf(ca, pki.KeyPair(cert, key), DNS, IPS, NOW)
    assert reused is reusable
    if not reusable:
        assert leaf.key != key and pki.leaf_is_reusable(ca, leaf.cert, leaf.key, DNS, IPS, NOW)


def test_leaves_follow_a_regenerated_ca():
    expired_ca = pki.KeyPair(
        cert_pem(build_cert(CA_KEY, not_before=NOW - 4000 * DAY, not_after=NOW + 10 * DAY)), key_pem(CA_KEY)
    )
    leaf, _ = pki.ensure_leaf(expired_ca, None, DNS, IPS, NOW - 3000 * DAY)
    new_ca, generated = pki.ensure_ca(expired_ca, NOW)
    assert generated
    renewed, reused = pki.ensure_leaf(new_ca, leaf, DNS, IPS, NOW)
    assert not reused
    load(renewed.cert).verify_directly_issued_by(load(new_ca.cert))


def test_key_never_shows_in_repr():
    assert CA.key not in repr(CA) and "PRIVATE" not in repr(CA) and "PRIVATE" not in str(LEAF)
    assert "cert=" in repr(CA)


def test_import_does_not_load_cryptography(repo_root):
    import subprocess
    import sys

    code = "import sys; from lib import pki; print(any(m.startswith('cryptography') for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root / "hooks", capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- property target `pki.reuse` ----------------------------------------------------------------

# Same key as CA, another certificate: leaves of CA still chain to it (issuer name and signature match).
REISSUED_CA = pki.KeyPair(cert_pem(build_cert(CA_KEY, not_after=NOW + 3000 * DAY)), key_pem(CA_KEY))
# (cert, key) pairs that belong together; the strategies below break them up part of the time.
PAIRS = [
    (CA.cert, CA.key),
    (OTHER_CA.cert, OTHER_CA.key),
    (cert_pem(build_cert(CA_KEY, not_after=NOW + 20 * DAY)), CA.key),
    (LEAF.cert, LEAF.key),
    (cert_pem(leaf_by(CA_KEY, LEAF_KEY, not_after=NOW + 40 * DAY)), LEAF.key),
    (cert_pem(leaf_by(CA_KEY, LEAF_KEY, not_before=NOW - 3000 * DAY, not_after=NOW - DAY)), LEAF.key),
    (cert_pem(leaf_by(OTHER_CA_KEY, LEAF_KEY)), LEAF.key),
    (cert_pem(leaf_by(CA_KEY, OTHER_KEY, ips=PROXY_IPS, dns=PROXY_DNS)), key_pem(OTHER_KEY)),
    (cert_pem(leaf_by(CA_KEY, OTHER_KEY, dns=[*DNS, "x.example"])), key_pem(OTHER_KEY)),
]
CERTS = [cert for cert, _ in PAIRS]
KEYS = [key for _, key in PAIRS] + [key_pem(RSA_KEY), key_pem(LEAF_KEY, b"pw")]


@st.composite
def mangled(draw, pool):
    text = draw(st.sampled_from(pool))
    how = draw(st.sampled_from(["keep", "truncate", "flip", "append", "prepend", "double"]))
    if how == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if how == "flip":
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + draw(st.characters(codec="utf-8")) + text[at + 1 :]
    if how == "append":
        return text + draw(st.text(max_size=40))
    if how == "prepend":
        return draw(st.text(max_size=40)) + text
    if how == "double":
        return text + text
    return text


def material(pool):
    return st.one_of(
        mangled(pool), st.none(), st.text(max_size=200), st.sampled_from(GARBAGE), st.binary(max_size=20)
    )


@st.composite
def cert_and_key(draw, pairs):
    cert, key = draw(st.sampled_from(pairs))
    # Each half is replaced a quarter of the time, so intact pairs stay common enough for the
    # "valid material is reused" side of the oracle to be exercised too.
    if draw(st.integers(0, 3)) == 0:
        cert = draw(material(CERTS))
    if draw(st.integers(0, 3)) == 0:
        key = draw(material(KEYS))
    return cert, key


moments = st.one_of(
    st.just(NOW),
    st.integers(-40 * 24, 40 * 24).map(lambda hours: NOW + hours * timedelta(hours=1)),
    st.integers(-4000, 4000).map(lambda days: NOW + days * DAY),
)
requirements = st.sampled_from(
    [(DNS, IPS), (list(reversed(DNS)), IPS), (PROXY_DNS, PROXY_IPS), (DNS, ["127.0.0.1", "10.0.0.6"])]
)


def assert_valid_leaf(ca, cert_pem_text, key_pem_text, dns, ips, now):
    """Independent restatement of the reuse rule, used to check what the code accepted."""
    certs = x509.load_pem_x509_certificates(cert_pem_text.encode())
    assert len(certs) == 1
    cert = certs[0]
    key = serialization.load_pem_private_key(key_pem_text.encode(), password=None)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(load(ca.cert))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == set(dns)
    assert {str(i) for i in sans.get_values_for_type(x509.IPAddress)} == set(ips)
    assert len(list(sans)) == len(sans.get_values_for_type(x509.DNSName)) + len(
        sans.get_values_for_type(x509.IPAddress)
    )
    assert cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now >= timedelta(days=30)


FAST = settings(suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(pair=cert_and_key(PAIRS), now=moments)
def test_property_ca_reuse(pair, now):
    cert, key = pair
    reusable = pki.ca_is_reusable(cert, key, now)
    assert isinstance(reusable, bool)
    event(f"CA reusable: {reusable}")
    if reusable:
        parsed = x509.load_pem_x509_certificates(cert.encode())
        assert len(parsed) == 1
        loaded = serialization.load_pem_private_key(key.encode(), password=None)
        assert parsed[0].public_key() == loaded.public_key()
        assert parsed[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert parsed[0].not_valid_before_utc <= now <= parsed[0].not_valid_after_utc - timedelta(days=30)
    existing = pki.KeyPair(cert, key) if isinstance(cert, str) and isinstance(key, str) else None
    ca, generated = pki.ensure_ca(existing, now)
    assert generated is not (reusable and existing is not None)
    if not generated:
        assert ca is existing


@FAST
@given(
    ca=st.sampled_from([CA, OTHER_CA, REISSUED_CA]),
    # The valid leaf is listed several times so reuse happens in a fair share of the examples.
    pair=cert_and_key(PAIRS[3:] + [PAIRS[3]] * 3),
    names=requirements,
    now=moments,
)
def test_property_leaf_reuse(ca, pair, names, now):
    cert, key = pair
    dns, ips = names
    reusable = pki.leaf_is_reusable(ca, cert, key, dns, ips, now)
    assert isinstance(reusable, bool)
    event(f"leaf reusable: {reusable}")
    if reusable:
        assert_valid_leaf(ca, cert, key, dns, ips, now)
    if not pki.ca_is_reusable(ca.cert, ca.key, now):
        return
    existing = pki.KeyPair(cert, key) if isinstance(cert, str) and isinstance(key, str) else None
    leaf, reused = pki.ensure_leaf(ca, existing, dns, ips, now)
    assert reused is (reusable and existing is not None)
    if reused:
        assert leaf is existing
    else:
        # A freshly issued leaf carries the SANs exactly, in the order given.
        assert _sans(load(leaf.cert)) == (dns, ips)
    assert_valid_leaf(ca, leaf.cert, leaf.key, dns, ips, now)


# --- the metrics scraper's client certificate ------------------------------------------------


def test_scraper_certificate_is_a_client_certificate_of_the_ca():
    ca, _ = pki.ensure_ca(None, NOW)
    scraper, reused = pki.ensure_scraper(ca, None, NOW)
    assert not reused
    cert = x509.load_pem_x509_certificate(scraper.cert.encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.encode()))
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["registry-metrics-scraper"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(scraper.key.encode(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_scraper_certificate_is_kept_until_the_ca_changes_or_it_expires():
    ca, _ = pki.ensure_ca(None, NOW)
    scraper, _ = pki.ensure_scraper(ca, None, NOW)
    assert pki.ensure_scraper(ca, scraper.to_dict(), NOW + timedelta(days=365)) == (scraper, True)
    other_ca, _ = pki.ensure_ca(None, NOW)
    renewed, reused = pki.ensure_scraper(other_ca, scraper.to_dict(), NOW)
    assert not reused and renewed != scraper
    expiring, reused = pki.ensure_scraper(ca, scraper.to_dict(), NOW + pki.LEAF_VALIDITY - timedelta(days=1))
    assert not reused and expiring != scraper


def test_a_front_certificate_is_never_taken_for_the_scraper():
    ca, _ = pki.ensure_ca(None, NOW)
    leaf, _ = pki.ensure_leaf(ca, None, *pki.front_names("cluster.local", "10.0.0.1"), NOW)
    scraper, reused = pki.ensure_scraper(ca, leaf, NOW)
    assert not reused and scraper.cert != leaf.cert
    assert pki.ensure_scraper(ca, {"cert": "garbage", "key": "garbage"}, NOW)[1] is False
