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
"""The push endpoint's certificate in https mode `CustomCertificate` (SPEC 5.8, 7.1).

`select` picks the user's `kubernetes.io/tls` Secret from the hook's snapshot and returns its content as
decoded PEM text, or the reason it cannot be used. Nothing half is ever returned: a Secret that is
missing, not base64, not PEM, or whose key does not belong to its certificate yields no data, so the
chart renders no Ingress TLS from it. Reasons never quote the Secret's content.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

HTTPS_MODES = ("Disabled", "CertManager", "CustomCertificate", "OnlyInURI")


@dataclass(frozen=True)
class Choice:
    mode: str
    secret_name: str


def effective(module_https: dict | None, global_https: dict | None) -> Choice:
    """The module's https section wins when it sets a mode (as the chart's registry_https_resolve does);
    the Secret name comes from the same section as the mode."""
    own = module_https if isinstance(module_https, dict) else {}
    glob = global_https if isinstance(global_https, dict) else {}
    source = own if own.get("mode") else glob
    mode = source.get("mode") or "CertManager"
    custom = source.get("customCertificate") if isinstance(source.get("customCertificate"), dict) else {}
    name = custom.get("secretName") if isinstance(custom.get("secretName"), str) else ""
    return Choice(str(mode), name)


def _pem(encoded, what: str, marker: str) -> str:
    if not isinstance(encoded, str) or not encoded:
        raise ValueError(f"it has no {what}")
    try:
        text = base64.b64decode(encoded, validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError(f"its {what} is not base64-encoded PEM") from None
    if marker not in text:
        raise ValueError(f"its {what} is not a PEM {marker.lower()}")
    return text


def decode(item: dict) -> dict[str, str]:
    """{tls.crt, tls.key[, ca.crt]} as PEM text; ValueError with a reason that quotes nothing secret."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    crt = _pem(item.get("crt"), "tls.crt", "CERTIFICATE")
    key = _pem(item.get("key"), "tls.key", "PRIVATE KEY")
    try:
        certificate = x509.load_pem_x509_certificate(crt.encode())
    except ValueError:
        raise ValueError("its tls.crt is not a valid certificate") from None
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("its tls.key is not an unencrypted private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(serialization.Encoding.DER, public) != \
            private.public_key().public_bytes(serialization.Encoding.DER, public):
        raise ValueError("its tls.key does not belong to its tls.crt")
    data = {"tls.crt": crt, "tls.key": key}
    if item.get("ca"):
        data["ca.crt"] = _pem(item.get("ca"), "ca.crt", "CERTIFICATE")
    return data


def select(choice: Choice, secrets: list[dict]) -> tuple[dict[str, str] | None, str]:
    """(data, "") when the mode is CustomCertificate and the named Secret is usable; (None, reason) when it
    is not; (None, "") in every other mode."""
    if choice.mode != "CustomCertificate":
        return None, ""
    if not choice.secret_name:
        return None, "https.customCertificate.secretName is not set"
    item = next((s for s in secrets if isinstance(s, dict) and s.get("name") == choice.secret_name), None)
    if item is None:
        return None, f"Secret d8-system/{choice.secret_name} of type kubernetes.io/tls does not exist"
    try:
        return decode(item), ""
    except ValueError as exc:
        return None, f"Secret d8-system/{choice.secret_name} cannot be used: {exc}"
