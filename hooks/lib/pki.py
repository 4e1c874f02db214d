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
"""Module CA and TLS front certificates (SPEC 5.10): generation and the reuse rules.

Everything here is pure: the caller passes `now` (from lib.clock) and stores the PEM strings.
`cryptography` is imported inside the functions because loading it costs ~100 ms, and most hook
runs only need to know that nothing has to be (re)generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipaddress

    from cryptography import x509

CA_COMMON_NAME = "registry-ca"
LEAF_COMMON_NAME = "registry-front"
# Client certificate Prometheus presents to the fronts' metrics listener (the only name it accepts).
SCRAPER_COMMON_NAME = "registry-metrics-scraper"
# Day counts follow the kubeadm/cfssl convention (87600h / 43800h) rather than calendar years,
# which keeps the arithmetic free of leap-day special cases.
CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=1825)
# A leaf never outlives its CA: clients would reject the chain while the leaf still looks valid.
LEAF_CA_MARGIN = timedelta(hours=1)
MIN_REMAINING = timedelta(days=30)
# Certificates start slightly in the past so a node whose clock lags the hook's does not see
# a "not yet valid" certificate right after a rotation.
BACKDATE = timedelta(hours=1)
SERIAL_BITS = 128

SERVICE_NAME = "registry.d8-system.svc"
LOOPBACK_IP = "127.0.0.1"

_DNS_LABEL = r"[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
# Left uncompiled at import (re caches it on first use): most hook runs never check a domain.
_DNS_NAME = rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*"


class CannotIssue(ValueError):
    """The CA cannot sign: its certificate or key does not decode, they do not match, or it expires too soon."""


@dataclass(frozen=True)
class KeyPair:
    cert: str
    # Hidden from repr so a logged or asserted KeyPair can never leak the private key.
    key: str = field(repr=False)

    @classmethod
    def from_mapping(cls, obj: Any) -> KeyPair | None:
        """Tolerant reader for the values shape `{cert, key}`; anything else is 'no material'."""
        if not isinstance(obj, dict):
            return None
        cert, key = obj.get("cert"), obj.get("key")
        if not isinstance(cert, str) or not isinstance(key, str) or not cert or not key:
            return None
        return cls(cert=cert, key=key)

    def to_dict(self) -> dict[str, str]:
        return {"cert": self.cert, "key": self.key}


# --- time -------------------------------------------------------------------------------------


def _utc(now: datetime) -> datetime:
    # A wrong `now` is a caller bug; answering "not reusable" would silently rotate the CA,
    # which forces every node to re-trust it, so fail loudly instead.
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise TypeError("pki: `now` must be a timezone-aware datetime")
    # Certificates carry whole seconds; truncating keeps generated dates reproducible in tests.
    return now.astimezone(UTC).replace(microsecond=0)


def _has_time_left(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now >= MIN_REMAINING


# --- decoding (never raises on garbage) -------------------------------------------------------


def _load_cert(pem: Any) -> x509.Certificate | None:
    if not isinstance(pem, str) or not pem:
        return None
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem.encode("utf-8"))
    except Exception:  # ValueError, UnicodeError and friends: all mean "not usable"
        return None
    # Extra certificates would be trusted (CA) or served (leaf) along with the first one, so a
    # bundle is never taken for the single certificate we expect.
    return certs[0] if len(certs) == 1 else None


def _load_key(pem: Any) -> Any:
    if not isinstance(pem, str) or not pem:
        return None
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except Exception:  # encrypted, malformed, unsupported: not usable either way
        return None
    # Only key types the module can sign with and nginx can serve. Foreign-but-sound material
    # (e.g. an RSA CA adopted from the installer) is kept rather than rotated.
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key if key.curve.name in ("secp256r1", "secp384r1", "secp521r1") else None
    if isinstance(key, rsa.RSAPrivateKey):
        return key if key.key_size >= 2048 else None
    return None


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_pair(cert_pem: Any, key_pem: Any) -> tuple[x509.Certificate, Any] | None:
    cert = _load_cert(cert_pem)
    if cert is None:
        return None
    key = _load_key(key_pem)
    if key is None:
        return None
    try:
        if _spki(cert.public_key()) != _spki(key.public_key()):
            return None
    except Exception:  # a certificate with an unsupported public key algorithm
        return None
    return cert, key


def _extension(cert: x509.Certificate, ext_type: type) -> Any:
    """The extension's value, or None when absent or undecodable."""
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None
    except Exception:  # duplicate or malformed extensions
        return None


def _is_ca_cert(cert: x509.Certificate) -> bool:
    from cryptography import x509

    # Go (containerd) refuses to chain through a certificate without CA:TRUE, or whose
    # keyUsage, when present, lacks keyCertSign.
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        return False
    usage = _extension(cert, x509.KeyUsage)
    return usage is None or usage.key_cert_sign


# --- CA ---------------------------------------------------------------------------------------


def ca_is_reusable(cert_pem: str | None, key_pem: str | None, now: datetime) -> bool:
    now = _utc(now)
    pair = _load_pair(cert_pem, key_pem)
    if pair is None:
        return False
    cert, _ = pair
    try:
        return _is_ca_cert(cert) and _has_time_left(cert, now)
    except Exception:
        return False


def ensure_ca(existing: KeyPair | None, now: datetime) -> tuple[KeyPair, bool]:
    """(CA, generated_new). A regenerated CA invalidates every leaf; callers log that."""
    now = _utc(now)
    existing = _as_keypair(existing)
    if existing is not None and ca_is_reusable(existing.cert, existing.key, now):
        return existing, False
    return _generate_ca(now), True


def _generate_ca(now: datetime) -> KeyPair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return KeyPair(cert=_cert_pem(cert), key=_key_pem(key))


# --- leaf -------------------------------------------------------------------------------------


def front_names(cluster_domain: str, ip: str | None) -> tuple[list[str], list[str]]:
    """(DNS SANs, IP SANs) of a front certificate.

    A master's certificate when `ip` is given, the in-cluster proxy's when it is None.
    """
    if (
        not isinstance(cluster_domain, str)
        or not re.fullmatch(_DNS_NAME, cluster_domain, re.ASCII)
        or len(cluster_domain) > 253
    ):
        raise ValueError(f"pki: cluster domain {cluster_domain!r} is not a valid DNS name")
    dns = [SERVICE_NAME, f"{SERVICE_NAME}.{cluster_domain}", "localhost"]
    ips = [LOOPBACK_IP]
    if ip is not None:
        rendered = str(_parse_ipv4(ip))
        # A master on loopback (simulator, `up`) would otherwise list 127.0.0.1 twice.
        if rendered not in ips:
            ips.append(rendered)
    return dns, ips


def _parse_ipv4(ip: Any) -> ipaddress.IPv4Address:
    # ipaddress also accepts integers and bytes; only the textual form is a valid input here.
    if not isinstance(ip, str):
        raise ValueError(f"pki: IP address must be a string, got {type(ip).__name__}")
    import ipaddress  # imported on use, like cryptography: most hook runs issue no certificate (issue #15)

    try:
        return ipaddress.IPv4Address(ip)
    except ValueError:
        raise ValueError(
            f"pki: {ip!r} is not an IPv4 address (IPv6 and other forms are not supported)"
        ) from None


def _required_sans(dns: list[str], ips: list[str]) -> tuple[set[str], set[str]]:
    dns_set = set()
    for name in dns:
        if not isinstance(name, str) or not name or not name.isascii():
            raise ValueError(f"pki: {name!r} is not a usable DNS SAN")
        dns_set.add(name)
    return dns_set, {str(_parse_ipv4(ip)) for ip in ips}


def _cert_sans(cert: x509.Certificate) -> tuple[set[str], set[str]] | None:
    """The certificate's SANs, or None when it holds anything besides DNS names and IPv4 addresses."""
    import ipaddress

    from cryptography import x509

    sans = _extension(cert, x509.SubjectAlternativeName)
    if sans is None:
        return None
    dns: set[str] = set()
    ips: set[str] = set()
    for entry in sans:
        if isinstance(entry, x509.DNSName):
            dns.add(entry.value)
        elif isinstance(entry, x509.IPAddress) and isinstance(entry.value, ipaddress.IPv4Address):
            ips.add(str(entry.value))
        else:
            return None
    return dns, ips


def _serves_tls(cert: x509.Certificate) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    usage = _extension(cert, x509.ExtendedKeyUsage)
    if usage is None or ExtendedKeyUsageOID.SERVER_AUTH not in usage:
        return False
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is None or not constraints.ca


def leaf_is_reusable(
    ca: KeyPair, cert_pem: str | None, key_pem: str | None, dns: list[str], ips: list[str], now: datetime
) -> bool:
    now = _utc(now)
    try:
        wanted = _required_sans(dns, ips)
    except ValueError:
        # Nothing can satisfy an impossible requirement; ensure_leaf reports it properly.
        return False
    ca_cert = _load_cert(getattr(ca, "cert", None))
    if ca_cert is None:
        return False
    pair = _load_pair(cert_pem, key_pem)
    if pair is None:
        return False
    cert, _ = pair
    try:
        # Checks both the issuer name and the signature against the CA's public key.
        cert.verify_directly_issued_by(ca_cert)
        return _serves_tls(cert) and _cert_sans(cert) == wanted and _has_time_left(cert, now)
    except Exception:  # InvalidSignature, unsupported algorithms, name mismatch
        return False


def reuse_window(cert_pem: str | None) -> list[str] | None:
    """[not before, not after - MIN_REMAINING] (ISO-8601 UTC): the times at which _has_time_left holds."""
    cert = _load_cert(cert_pem)
    if cert is None:
        return None
    return [cert.not_valid_before_utc.isoformat(), (cert.not_valid_after_utc - MIN_REMAINING).isoformat()]


def ensure_leaf(
    ca: KeyPair, existing: KeyPair | None, dns: list[str], ips: list[str], now: datetime
) -> tuple[KeyPair, bool]:
    """(leaf, reused)."""
    now = _utc(now)
    existing = _as_keypair(existing)
    if existing is not None and leaf_is_reusable(ca, existing.cert, existing.key, dns, ips, now):
        return existing, True
    return _generate_leaf(ca, dns, ips, now), False


def _generate_leaf(ca: KeyPair, dns: list[str], ips: list[str], now: datetime) -> KeyPair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    dns_names = _unique(dns)
    ip_addrs = _unique(_parse_ipv4(ip) for ip in ips)
    _required_sans(dns_names, [str(ip) for ip in ip_addrs])
    if not dns_names and not ip_addrs:
        raise ValueError("pki: a front certificate needs at least one SAN")

    pair = _load_pair(getattr(ca, "cert", None), getattr(ca, "key", None))
    if pair is None:
        raise CannotIssue("pki: the CA certificate or key cannot be decoded, or they do not match")
    ca_cert, ca_key = pair

    not_before = now - BACKDATE
    not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc - LEAF_CA_MARGIN)
    if not_after <= now:
        raise CannotIssue("pki: the CA expires too soon to issue a front certificate")

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(addr) for addr in ip_addrs]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LEAF_COMMON_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert=_cert_pem(cert), key=_key_pem(key))


def _is_scraper(cert: x509.Certificate) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    usage = _extension(cert, x509.ExtendedKeyUsage)
    if usage is None or list(usage) != [ExtendedKeyUsageOID.CLIENT_AUTH]:
        return False
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    constraints = _extension(cert, x509.BasicConstraints)
    return [n.value for n in names] == [SCRAPER_COMMON_NAME] and (constraints is None or not constraints.ca)


def ensure_scraper(ca: KeyPair, existing: Any, now: datetime) -> tuple[KeyPair, bool]:
    """(client certificate of the metrics scraper, reused): kept while the CA signed it and it has time left."""
    now = _utc(now)
    existing = _as_keypair(existing)
    ca_cert = _load_cert(getattr(ca, "cert", None))
    if existing is not None and ca_cert is not None:
        pair = _load_pair(existing.cert, existing.key)
        if pair is not None:
            try:
                pair[0].verify_directly_issued_by(ca_cert)
                if _is_scraper(pair[0]) and _has_time_left(pair[0], now):
                    return existing, True
            except Exception:  # InvalidSignature, unsupported algorithms, name mismatch
                pass
    return _generate_scraper(ca, now), False


def _generate_scraper(ca: KeyPair, now: datetime) -> KeyPair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pair = _load_pair(getattr(ca, "cert", None), getattr(ca, "key", None))
    if pair is None:
        raise CannotIssue("pki: the CA certificate or key cannot be decoded, or they do not match")
    ca_cert, ca_key = pair
    not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc - LEAF_CA_MARGIN)
    if not_after <= now:
        raise CannotIssue("pki: the CA expires too soon to issue the scraper certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SCRAPER_COMMON_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert=_cert_pem(cert), key=_key_pem(key))


# --- helpers ----------------------------------------------------------------------------------


def _as_keypair(obj: Any) -> KeyPair | None:
    # Values hold `{cert, key}` dicts; accepting them spares every caller a conversion.
    return obj if isinstance(obj, KeyPair) else KeyPair.from_mapping(obj)


def _unique(items: Any) -> list:
    seen: list = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _serial() -> int:
    # RFC 5280 wants a positive serial; 0 is the only non-positive value randbits can return.
    import secrets

    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial > 0:
            return serial


def _key_usage(*, cert_sign: bool) -> Any:
    from cryptography import x509

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


def _authority_key_id(ca_cert: x509.Certificate) -> Any:
    from cryptography import x509

    # Prefer the CA's own key identifier so the pair matches even for an adopted CA whose SKI
    # was computed differently; fall back to deriving it from the public key.
    ski = _extension(ca_cert, x509.SubjectKeyIdentifier)
    if ski is not None:
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())


def _cert_pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
