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
"""The TLS front of every registry service replica: nginx.conf (SPEC 5.4, 5.5).

One renderer for all placements. `Direct` (in-cluster proxy) and `Proxy` (masters) are read-only and
map `system/deckhouse` onto the upstream path; `Local` stores under `system/deckhouse` itself and
enforces the per-user ACL. Addresses, ports and file locations come from a `Layout`, so the loopback
tests and the simulator get their configs from this very function instead of patching its text.

nginx has no escaping for most of the places a value lands in, so every interpolated value is
validated against a character class first (SPEC 10.2); a value that does not fit raises ValueError
before any text is produced.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lib import validate
from lib.patterns import lazy

FLAVOURS = ("Direct", "Proxy", "Local")
# First line of every file the module writes on nodes; the master step checks it before removing one.
MARKER = "# managed by d8 registry module"
MAPPED_REPOSITORY = "system/deckhouse"
REALM = "Deckhouse registry"
# Long enough for a multi-GiB layer from a slow upstream: distribution streams it while fetching.
READ_TIMEOUT = "900s"

# Local ACL (SPEC 5.4). Names are the htpasswd user names of lib.users.USERS.
_PULLERS = ("ro", "mirror-puller")
_WRITERS = ("rw", "mirror-pusher")
_CATALOG_USERS = ("mirror-puller", "rw", "mirror-pusher")

_SAFE_PATH_RE = lazy(r"/(?:[A-Za-z0-9._-]+/)*[A-Za-z0-9._-]+", re.ASCII)


class Layout(NamedTuple):
    """What one front binds and where it finds its files; the defaults are the production pod's.

    `listen` is the address of both HTTPS listeners: a master's InternalIP for the static pods,
    0.0.0.0 for the Deployment (the pod IP is not known when the config is rendered). The
    distribution and debug addresses are where this replica's distribution listens; loopback tests
    give each master its own address so three replicas can share one machine. A NamedTuple, not a
    dataclass: the class is built on every hook run, and a NamedTuple is much cheaper to build (issue #15).
    """

    listen: str = "0.0.0.0"
    port: int = 5001
    metrics_port: int = 5004
    distribution: str = "127.0.0.1:5003"
    debug: str = "127.0.0.1:5002"
    pki_dir: str = "/pki"
    front_dir: str = "/config/front"
    temp_dir: str = "/tmp"


PRODUCTION_LAYOUT = Layout()


def _scraper_subject() -> str:
    """Subject nginx reports ($ssl_client_s_dn) for the metrics scraper's client certificate (lib.pki)."""
    # pki is imported on use: a hook run that renders no front config need not load it (issue #15)
    from lib import pki

    return f"CN={pki.SCRAPER_COMMON_NAME}"


def render(flavour: str, layout: Layout = PRODUCTION_LAYOUT, upstream_path: str | None = None, auth: bool = True) -> str:
    """nginx.conf of one front.

    flavour        Direct | Proxy | Local
    upstream_path  repository path at the upstream that `system/deckhouse` maps to (Direct, Proxy)
    auth           Basic authentication against `<front_dir>/htpasswd`; False only for Direct with
                   an anonymous upstream (there are no credentials to check clients against)
    """
    if flavour not in FLAVOURS:
        raise ValueError("front: flavour must be Direct, Proxy or Local")
    if flavour == "Local":
        if upstream_path is not None:
            raise ValueError("front: Local stores images itself and has no upstream path")
        if not auth:
            raise ValueError("front: Local always authenticates (its ACL is per user)")
    else:
        validate.repo_path(upstream_path)
        if flavour == "Proxy" and not auth:
            raise ValueError("front: Proxy always authenticates (nodes use the ro user)")
    listen = str(validate.ipv4(layout.listen))
    port = validate.port(layout.port)
    metrics_port = validate.port(layout.metrics_port)
    if port == metrics_port:
        raise ValueError("front: the registry and metrics listeners need different ports")
    distribution = _host_port(layout.distribution)
    debug = _host_port(layout.debug)
    pki_dir, front_dir, temp_dir = (_abs_dir(p) for p in (layout.pki_dir, layout.front_dir, layout.temp_dir))

    out = _Writer()
    out.line(MARKER)
    out.line("daemon off;")
    out.line("worker_processes 2;")
    out.line(f"pid {temp_dir}/nginx.pid;")
    out.line("error_log stderr warn;")
    with out.block("events"):
        out.line("worker_connections 1024;")
    with out.block("http"):
        _http_settings(out, temp_dir)
        with out.block("upstream distribution"):
            out.line(f"server {distribution};")
            out.line("keepalive 16;")
        if flavour == "Local":
            _local_maps(out)
        with out.block("server"):
            out.line(f"listen {listen}:{port} ssl;")
            _tls(out, pki_dir)
            if auth:
                out.line(f'auth_basic "{REALM}";')
                out.line(f"auth_basic_user_file {front_dir}/htpasswd;")
            else:
                out.line("auth_basic off;")
            _proxy_headers(out)
            if flavour == "Local":
                _local_locations(out)
            else:
                _mapped_locations(out, upstream_path)
            with out.block("location = /healthz"):
                # Probes carry no credentials; distribution's `/` answers 200 only while it and its
                # storage are healthy, so the probe fails when either process is down.
                out.line("auth_basic off;")
                out.line("access_log off;")
                _read_only(out)
                out.line("proxy_pass http://distribution/;")
            with out.block("location /"):
                out.line("return 404;")
        with out.block("server"):
            out.line(f"listen {listen}:{metrics_port} ssl;")
            _tls(out, pki_dir)
            # Only Prometheus scrapes here: it must present the scraper's client certificate from the
            # module CA; any other certificate of that CA (a front's is for servers only) gets 403.
            out.line(f"ssl_client_certificate {pki_dir}/ca.crt;")
            out.line("ssl_verify_client on;")
            out.line("access_log off;")
            with out.block("location = /metrics"):
                out.line(f'if ($ssl_client_s_dn != "{_scraper_subject()}") {{ return 403; }}')
                out.line("limit_except GET { deny all; }")
                out.line(f"proxy_pass http://{debug}/metrics;")
            with out.block("location /"):
                out.line("return 404;")
    return out.text()


# -- pieces ------------------------------------------------------------------------------------

def _http_settings(out: _Writer, temp_dir: str) -> None:
    # The root filesystem is read-only: every buffer nginx may spill lives under the tmp emptyDir. The image's
    # nginx has no fastcgi, uwsgi or scgi module (images/registry-nginx/configure-flags), so their temp-path
    # directives do not exist there: client bodies and proxied responses are the only buffers.
    for kind in ("client_body", "proxy"):
        out.line(f"{kind}_temp_path {temp_dir}/{kind};")
    # $uri instead of $request: the request line carries the query string (upload state tokens),
    # and no header (Authorization included) is ever logged.
    out.line("log_format registry '$remote_addr - $remote_user [$time_local] "
             "\"$request_method $uri $server_protocol\" $status $body_bytes_sent $request_time';")
    out.line("access_log /dev/stdout registry;")
    out.line("server_tokens off;")
    out.line("client_max_body_size 0;")
    out.line("proxy_request_buffering off;")
    out.line("proxy_buffering off;")
    out.line("proxy_http_version 1.1;")
    out.line(f"proxy_read_timeout {READ_TIMEOUT};")
    out.line(f"proxy_send_timeout {READ_TIMEOUT};")
    out.line("ssl_protocols TLSv1.2 TLSv1.3;")
    out.line("ssl_session_cache shared:registry_tls:1m;")


def _tls(out: _Writer, pki_dir: str) -> None:
    out.line(f"ssl_certificate {pki_dir}/front.crt;")
    out.line(f"ssl_certificate_key {pki_dir}/front.key;")


def _proxy_headers(out: _Writer) -> None:
    # distribution answers with relative Locations (dataplane.distribution_config), so neither the scheme nor
    # the host is forced here: behind the push Ingress the client may well be speaking plain HTTP.
    out.line("proxy_set_header Host $http_host;")
    out.line("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
    # distribution has no auth of its own; the client's credentials stop here.
    out.line('proxy_set_header Authorization "";')
    out.line('proxy_set_header Connection "";')


def _read_only(out: _Writer) -> None:
    out.line("limit_except GET HEAD { deny all; }")


def _mapped_locations(out: _Writer, upstream_path: str) -> None:
    """Direct/Proxy: `system/deckhouse` and the upstream path are one read-only repository."""
    with out.block("location = /v2/"):
        _read_only(out)
        out.line("proxy_pass http://distribution;")
    mapped = re.escape(MAPPED_REPOSITORY)
    with out.block(f"location ~ ^/v2/{mapped}(/.*)$"):
        _read_only(out)
        # `break` keeps the rewritten URI inside this location; query arguments (pagination) stay.
        out.line(f"rewrite ^/v2/{mapped}(/.*)$ /v2/{upstream_path}$1 break;")
        out.line("proxy_pass http://distribution;")
    # Link headers of paginated answers name the upstream path, so it is served as well. A prefix
    # location (`^~`) beats regexes, so when the upstream path is a parent of `system/deckhouse` the
    # prefix would swallow the mapping above; a regex listed after it keeps the mapping first.
    if f"{MAPPED_REPOSITORY}/".startswith(f"{upstream_path}/"):
        header = f"location ~ ^/v2/{re.escape(upstream_path)}/"
    else:
        header = f"location ^~ /v2/{upstream_path}/"
    with out.block(header):
        _read_only(out)
        out.line("proxy_pass http://distribution;")


def _local_maps(out: _Writer) -> None:
    # Evaluated on the claimed user name before auth_basic verifies its password (which it then
    # does for that same name); requests without credentials are left to auth_basic for the 401.
    with out.block('map "$remote_user:$request_method" $registry_deny'):
        out.line("default 1;")
        out.line('"~^:" 0;')
        out.line(f'"~^({"|".join(_PULLERS)}):(GET|HEAD)$" 0;')
        out.line(f'"~^({"|".join(_WRITERS)}):" 0;')
    with out.block("map $remote_user $registry_catalog_deny"):
        out.line("default 1;")
        out.line('"" 0;')
        for user in _CATALOG_USERS:
            out.line(f"{user} 0;")


def _local_locations(out: _Writer) -> None:
    # Every location that checks the ACL ends in proxy_pass: `return` runs in the rewrite phase,
    # before auth_basic, so a location answering with `return` would never authenticate.
    with out.block("location = /v2/"):
        out.line("if ($registry_deny) { return 403; }")
        out.line("proxy_pass http://distribution;")
    with out.block("location = /v2/_catalog"):
        out.line("if ($registry_deny) { return 403; }")
        out.line("if ($registry_catalog_deny) { return 403; }")
        out.line("proxy_pass http://distribution;")
    with out.block(f"location ^~ /v2/{MAPPED_REPOSITORY}/"):
        out.line("if ($registry_deny) { return 403; }")
        out.line("proxy_pass http://distribution;")


# -- validation and text -----------------------------------------------------------------------

def _host_port(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError("front: an upstream address must be a string")
    host, sep, digits = value.rpartition(":")
    if not sep or not digits.isdigit() or not digits.isascii():
        raise ValueError("front: an upstream address must be <IPv4>:<port>")
    return f"{validate.ipv4(host)}:{validate.port(int(digits))}"


def _abs_dir(value: str) -> str:
    if not isinstance(value, str) or _SAFE_PATH_RE.fullmatch(value) is None:
        raise ValueError("front: directories must be absolute paths of letters, digits, '.', '_' and '-'")
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError("front: directories must not contain '.' or '..' components")
    return value


class _Writer:
    def __init__(self) -> None:
        self._lines: list[str] = []
        self._depth = 0

    def line(self, text: str) -> None:
        self._lines.append("    " * self._depth + text)

    def block(self, header: str):
        writer = self

        class _Block:
            def __enter__(self):
                writer.line(f"{header} {{")
                writer._depth += 1

            def __exit__(self, *exc):
                writer._depth -= 1
                writer.line("}")

        return _Block()

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
