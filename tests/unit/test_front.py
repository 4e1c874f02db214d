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
"""The front nginx.conf renderer (SPEC 5.4, 5.5, 10.2): structure, the rules nginx's phases impose,
input validation, and `nginx -t` on every flavour with the nginx built from the image's configure flags."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lib import front, pki

from .. import nginx_build

PROXY = {"upstream_path": "deckhouse/ee"}


def _blocks(conf: str, server: int = 0) -> dict[str, list[str]]:
    """location header -> its directive lines in the n-th server (0: registry, 1: metrics)."""
    out: dict[str, list[str]] = {}
    current = None
    depth = 0
    seen = -1
    for raw in conf.splitlines():
        line = raw.strip()
        if line == "server {":
            seen += 1
        if seen != server:
            continue
        if current is None and line.startswith("location ") and line.endswith("{"):
            current, depth = line[:-1].strip(), 1
            out.setdefault(current, [])
            continue
        if current is not None:
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                current = None
            else:
                out[current].append(line)
    return out


@pytest.mark.parametrize("flavour,kwargs", [("Proxy", PROXY), ("Direct", PROXY), ("Local", {})])
def test_every_protected_location_ends_in_proxy_pass(flavour, kwargs):
    # `return` runs in the rewrite phase, before auth_basic: a location answering with it would skip
    # authentication, so only the deliberate 404 catch-alls may use it (SPEC 12.3 #14).
    conf = front.render(flavour, **kwargs)
    for header, lines in [*_blocks(conf, 0).items(), *_blocks(conf, 1).items()]:
        if header == "location /":
            assert lines == ["return 404;"]
            continue
        assert lines[-1].startswith("proxy_pass "), header
        assert not any(line.startswith("return") for line in lines), header


def test_proxy_is_read_only_and_maps_the_fixed_repository():
    conf = front.render("Proxy", front.Layout(listen="10.0.0.11"), **PROXY)
    blocks = _blocks(conf)
    assert "listen 10.0.0.11:5001 ssl;" in conf and "listen 10.0.0.11:5004 ssl;" in conf
    assert 'auth_basic "Deckhouse registry";' in conf and "auth_basic_user_file /config/front/htpasswd;" in conf
    mapped = blocks["location ~ ^/v2/system/deckhouse(/.*)$"]
    assert "rewrite ^/v2/system/deckhouse(/.*)$ /v2/deckhouse/ee$1 break;" in mapped
    assert set(blocks) == {"location = /v2/", "location ~ ^/v2/system/deckhouse(/.*)$", "location ^~ /v2/deckhouse/ee/",
                           "location = /healthz", "location /"}
    assert set(_blocks(conf, 1)) == {"location = /metrics", "location /"}
    for header in ("location = /v2/", "location ~ ^/v2/system/deckhouse(/.*)$", "location ^~ /v2/deckhouse/ee/"):
        assert "limit_except GET HEAD { deny all; }" in blocks[header]
    assert "http2" not in conf and "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_certificate /pki/front.crt;" in conf and "ssl_certificate_key /pki/front.key;" in conf


def test_healthz_and_metrics():
    conf = front.render("Proxy", **PROXY)
    blocks = _blocks(conf)
    assert "auth_basic off;" in blocks["location = /healthz"]
    assert blocks["location = /healthz"][-1] == "proxy_pass http://distribution/;"
    assert _blocks(conf, 1)["location = /metrics"] == ['if ($ssl_client_s_dn != "CN=registry-metrics-scraper") '
                                                      "{ return 403; }",
                                                      "limit_except GET { deny all; }",
                                                      "proxy_pass http://127.0.0.1:5002/metrics;"]
    # the metrics listener asks every client for a certificate of the module CA
    metrics_server = conf[conf.rindex("server {"):]
    assert "ssl_client_certificate /pki/ca.crt;" in metrics_server and "ssl_verify_client on;" in metrics_server


def test_direct_anonymous_upstream_turns_auth_off_only_there():
    conf = front.render("Direct", upstream_path="deckhouse/ce", auth=False)
    assert "auth_basic_user_file" not in conf and "listen 0.0.0.0:5001 ssl;" in conf
    with pytest.raises(ValueError):
        front.render("Proxy", upstream_path="deckhouse/ce", auth=False)
    with pytest.raises(ValueError):
        front.render("Local", auth=False)
    with pytest.raises(ValueError):
        front.render("Local", upstream_path="deckhouse/ee")


def test_local_acl_is_the_documented_map():
    conf = front.render("Local")
    assert '''map "$remote_user:$request_method" $registry_deny {
        default 1;
        "~^:" 0;
        "~^(ro|mirror-puller):(GET|HEAD)$" 0;
        "~^(rw|mirror-pusher):" 0;
    }''' in conf
    blocks = _blocks(conf)
    assert set(blocks) == {"location = /v2/", "location = /v2/_catalog", "location ^~ /v2/system/deckhouse/",
                           "location = /healthz", "location /"}
    assert blocks["location = /v2/_catalog"][:2] == ["if ($registry_deny) { return 403; }",
                                                     "if ($registry_catalog_deny) { return 403; }"]
    assert "rewrite" not in conf and "limit_except GET HEAD" not in "".join(blocks["location ^~ /v2/system/deckhouse/"])


def test_access_log_never_carries_credentials_or_query_strings():
    conf = front.render("Local")
    log_format = next(line for line in conf.splitlines() if "log_format" in line)
    assert "$remote_user" in log_format
    for leaky in ("$request ", "$request_uri", "$args", "$query_string", "$http_authorization", "$http_"):
        assert leaky not in log_format


def test_temp_paths_stay_under_the_temp_dir():
    conf = front.render("Local", front.Layout(temp_dir="/var/run/x"))
    temp = [line.split()[1] for line in conf.splitlines() if "_temp_path" in line or line.startswith("pid ")]
    assert len(temp) == 3 and all(path.startswith("/var/run/x/") for path in temp)


def test_parent_upstream_path_does_not_shadow_the_mapping():
    blocks = _blocks(front.render("Proxy", upstream_path="system"))
    headers = list(blocks)
    assert "location ^~ /v2/system/" not in headers
    assert headers.index("location ~ ^/v2/system/deckhouse(/.*)$") < headers.index("location ~ ^/v2/system/")


@pytest.mark.parametrize("layout", [
    {"listen": "0.0.0.0;evil"}, {"listen": "10.0.0.011"}, {"listen": "::1"}, {"port": 0}, {"port": 70000},
    {"port": True}, {"metrics_port": 5001}, {"distribution": "localhost:5003"}, {"distribution": "127.0.0.1"},
    {"debug": "127.0.0.1:0"}, {"pki_dir": "pki"}, {"pki_dir": "/pki dir"}, {"front_dir": "/config/../etc"},
    {"temp_dir": "/tmp;"}, {"temp_dir": "/tmp/"},
])
def test_layout_values_are_validated(layout):
    with pytest.raises(ValueError):
        front.render("Proxy", front.Layout(**layout), **PROXY)


@pytest.mark.parametrize("path", ["", "Deckhouse/EE", "a//b", "../x", "a/./b", "d8;deny", "d8/ee$1", "d8 ee", "x{y}",
                                  'a"b', "a\nb", None, 5])
def test_upstream_path_is_validated(path):
    with pytest.raises(ValueError):
        front.render("Proxy", upstream_path=path)


@given(st.text(max_size=40))
def test_validation_implies_sink_safety(path):
    try:
        conf = front.render("Direct", upstream_path=path)
    except ValueError:
        return
    # accepted paths are made of the repository character class only, so they are inert in nginx
    assert re.fullmatch(r"[a-z0-9._/-]+", path)
    assert f"/v2/{path}$1 break;" in conf


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("front")
    now = datetime.now(UTC)
    ca, _ = pki.ensure_ca(None, now)
    leaf, _ = pki.ensure_leaf(ca, None, *pki.front_names("cluster.local", "127.0.0.11"), now)
    (directory / "front.crt").write_text(leaf.cert)
    (directory / "front.key").write_text(leaf.key)
    (directory / "ca.crt").write_text(ca.cert)
    return directory


@pytest.mark.parametrize("flavour,kwargs", [("Proxy", PROXY), ("Direct", PROXY), ("Direct", {**PROXY, "auth": False}),
                                            ("Local", {}), ("Proxy", {"upstream_path": "system"})])
def test_nginx_accepts_every_flavour(tls_dir, flavour, kwargs):
    nginx = nginx_build.binary()
    layout = front.Layout(listen="127.0.0.11", port=15001, metrics_port=15004, pki_dir=str(tls_dir),
                          front_dir=str(tls_dir), temp_dir=str(tls_dir))
    conf = tls_dir / f"{flavour}.conf"
    conf.write_text(front.render(flavour, layout, **kwargs))
    result = subprocess.run([nginx, "-e", "stderr", "-t", "-p", str(tls_dir), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
