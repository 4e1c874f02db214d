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
"""The orchestrator's state machine (SPEC 4.2-4.8): one level-triggered run.

Each run first renders what is running now (the "base": the data plane of the current mode and
whatever a switch in progress already started), then walks the stage pipeline of the target mode.
A stage either is ready (condition True, the run goes on) or not (condition False with its message,
the run stops). Nothing waits or sleeps; the next event runs it again. Readiness is observed only
from snapshots, so a restart resumes exactly where the cluster is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import clock, dataplane, deckhouse_registry, hashing, messages, node_config, settings, transitions
from . import conditions as cond
from .enums import (
    KIND_FINAL,
    KIND_NONE,
    KIND_TRANSITIONAL,
    SERVICE_INCLUSTER_PROXY,
    SERVICE_NODE_SERVICES,
    SERVICE_NONE,
)
from .snapshots import DeckhousePod, InClusterDeployment, MirrorPod, Node
from .values import plain_copy

if TYPE_CHECKING:
    from datetime import datetime

CONTAINERD_NGC = "d8-registry-containerd.sh"
INCLUSTER_NAME = "registry-incluster-proxy"
SERVICE_FOR = {"Direct": SERVICE_INCLUSTER_PROXY, "Proxy": SERVICE_NODE_SERVICES, "Local": SERVICE_NODE_SERVICES,
               "Unmanaged": SERVICE_NONE}
USERS_FOR = {"Direct": (), "Proxy": ("ro",), "Local": ("ro", "rw", "mirror_puller", "mirror_pusher"), "Unmanaged": ()}


# Plain classes, not dataclasses: building a dataclass runs generated code on every hook run (issue #15).
# Neither has __repr__ or __eq__: nothing compares or prints them (a repr would quote the verdict's credentials).
class Inputs:
    """Everything one run reads: the verdict on the settings, the snapshots and the module's globals.

    The run's time is `now` (a datetime) or `now_seconds` (whole seconds since the epoch), whichever the
    caller has; the other is derived on first use, so a run that only compares times never imports datetime.
    """

    __slots__ = ("verdict", "generation", "_now", "_now_seconds", "bootstrapped", "cluster_domain", "nodes",
                 "mirror_pods", "incluster", "deckhouse_pods", "live_registry", "ngc_versions", "checker_state",
                 "reusable_certs", "lb_image", "images", "proxy_env", "adopt", "checker_restored")

    def __init__(
        self,
        verdict: settings.Verdict,
        generation: int | None,
        now: datetime | None = None,
        bootstrapped: bool = True,
        cluster_domain: str = "cluster.local",
        nodes: list[Node] | None = None,
        mirror_pods: list[MirrorPod] | None = None,
        incluster: InClusterDeployment | None = None,
        deckhouse_pods: list[DeckhousePod] | None = None,
        live_registry: dict | None = None,              # decoded data of d8-system/deckhouse-registry
        ngc_versions: dict[str, str] | None = None,
        checker_state: dict | None = None,
        reusable_certs: dict[str, dict] | None = None,  # Secret name -> {front.crt, front.key}
        lb_image: str = "",
        images: dict[str, str] | None = None,           # registry image name -> <base>@<digest>
        proxy_env: list[dict] | None = None,            # cluster proxy variables for upstream-facing containers
        adopt: dict | None = None,                      # CA and users from registry-init (installer hand-off)
        # False until checker_init restored the checker's state in this process: addon-operator runs the
        # orchestrator's Synchronization before the beforeHelm hooks, so it can see no checker state yet
        checker_restored: bool = True,
        *,
        now_seconds: int | None = None,
    ):
        if (now is None) == (now_seconds is None):
            raise TypeError("Inputs needs exactly one of now and now_seconds")
        self.verdict = verdict
        self.generation = generation
        self._now = now
        self._now_seconds = now_seconds
        self.bootstrapped = bootstrapped
        self.cluster_domain = cluster_domain
        self.nodes = [] if nodes is None else nodes
        self.mirror_pods = [] if mirror_pods is None else mirror_pods
        self.incluster = incluster
        self.deckhouse_pods = [] if deckhouse_pods is None else deckhouse_pods
        self.live_registry = live_registry
        self.ngc_versions = {} if ngc_versions is None else ngc_versions
        self.checker_state = {} if checker_state is None else checker_state
        self.reusable_certs = {} if reusable_certs is None else reusable_certs
        self.lb_image = lb_image
        self.images = {} if images is None else images
        self.proxy_env = [] if proxy_env is None else proxy_env
        self.adopt = adopt
        self.checker_restored = checker_restored

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = clock.from_seconds(self._now_seconds)
        return self._now

    @property
    def now_seconds(self) -> int:
        """`now` in whole seconds since the epoch (certificates carry whole seconds, as pki compares them)."""
        if self._now_seconds is None:
            self._now_seconds = int(self._now.replace(microsecond=0).timestamp())
        return self._now_seconds

    def now_text(self) -> str:
        if self._now is not None:
            return self._now.strftime(clock.RFC3339)
        return clock.rfc3339_seconds(self._now_seconds)


class Outcome:
    """Everything one run decides: the next state and what the hook writes out."""

    __slots__ = ("state", "ready", "checker_params", "registry_patch", "events", "transition_not_supported",
                 "adopted")

    def __init__(self, state: dict, ready: bool, checker_params: dict, registry_patch: dict | None,
                 events: list[tuple[str, dict]], transition_not_supported: bool, adopted: bool = False):
        self.state = state
        self.ready = ready
        self.checker_params = checker_params
        self.registry_patch = registry_patch
        self.events = events
        self.transition_not_supported = transition_not_supported
        self.adopted = adopted


class Run:
    """Mutable working set of one run: the state being built, the inputs, and what to emit."""

    def __init__(self, inputs: Inputs, state: dict):
        self.inp = inputs
        self.state = state
        self.events: list[tuple[str, dict]] = []
        self.registry_patch: dict | None = None
        self.checker_params: dict = idle_checker_params()
        self.done_text = ""
        self.unknown = False        # a stage could not tell yet (checker state not restored)
        self.rendered_node_services = ""
        self._masters: tuple[list[dataplane.Master], list[str]] | None = None
        self.now = inputs.now_text()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        return self.state.setdefault("params", {})

    def log(self, message: str, **fields) -> None:
        self.events.append((message, fields))

    def set_condition(self, type_: str, status: bool, reason: str = "", message: str = "") -> None:
        before = cond.find(self.state.get("conditions", []), type_)
        self.state["conditions"] = cond.set_condition(
            self.state.get("conditions", []), type_, status, reason, message, self.inp.generation, self.now)
        # only stages become ready; Ready and ErrTransitionNotSupported are verdicts, not stages
        if status and (before is None or before.get("status") != "True") \
                and type_ not in ("Ready", "ErrTransitionNotSupported"):
            self.log("Stage ready", stage=type_, text=self.done_text or message)

    def masters(self) -> tuple[list[dataplane.Master], list[str]]:
        """Masters usable as endpoints, and the names of those without a valid IPv4 InternalIP."""
        if self._masters is None:  # the nodes do not change within a run
            self._masters = self._find_masters()
        return list(self._masters[0]), list(self._masters[1])

    def _find_masters(self) -> tuple[list[dataplane.Master], list[str]]:
        usable, excluded = [], []
        for node in self.inp.nodes:
            if not node.master:
                continue
            try:
                from . import validate

                validate.node_name(node.name)
                validate.ipv4_text(node.ip)
            except ValueError:
                excluded.append(node.name)
                continue
            usable.append(dataplane.Master(node.name, node.ip))
        return dataplane.sorted_masters(usable), excluded

    def master_ips(self) -> list[str]:
        return [m.ip for m in self.masters()[0]]

    def ca(self):
        from . import pki

        ca = self.state.get("pki", {}).get("ca")
        return pki.KeyPair(cert=ca["cert"], key=ca["key"]) if ca else None


# -- effective target ---------------------------------------------------------------------------

upstream_of = node_config.upstream_of


def effective_target(state: dict) -> dict | None:
    """Params the pipeline works with; legacy Unmanaged returns to the stored upstream."""
    target = state["params"]["target"]
    if target.get("legacy"):
        stored = state["params"].get("unmanaged")
        actual = state["params"].get("actual") or {}
        if not stored and actual.get("mode") == "Unmanaged":
            # a first switch abandoned half-way: return to the registry the nodes started from
            stored = actual
        if not stored:
            return None
        return {**upstream_of(stored), "mode": "Unmanaged", "legacy": True}
    return target


def target_node_params(run: Run, target: dict) -> dict:
    mode = target["mode"]
    if mode in ("Proxy", "Local"):
        ro = run.state.get("users", {}).get("ro", {})
        return node_config.node_params(target, ro, run.state.get("pki", {}).get("ca", {}).get("cert"))
    return node_config.node_params(target, None, None)


def actual_node_params(run: Run) -> dict | None:
    """What nodes use now: recorded, or (module never published) what deckhouse-registry says."""
    recorded = run.params.get("actual")
    if recorded:
        return recorded
    live = run.inp.live_registry
    if not live or not live.get("address"):
        return None
    username, password = deckhouse_registry.credentials_for(live)
    derived = {"mode": "Unmanaged", "scheme": (live.get("scheme") or "https").upper(),
               "host": live["address"], "path": (live.get("path") or "").lstrip("/")}
    if live.get("ca"):
        derived["ca"] = live["ca"]
    if username:
        derived["username"], derived["password"] = username, password or ""
    return derived


def _mirrors_for(run: Run, node_params: dict | None) -> dict:
    if not node_params:
        return {}
    return node_config.mirrors(node_params, run.master_ips())


# -- base rendering: what runs now ---------------------------------------------------------------

# the kinds of rendered entries whose digest lets a later run reuse them (_rendered_source)
NODE_SERVICES, INCLUSTER_PROXY = "node-services/2", "incluster-proxy/1"


def node_services_source(state: dict) -> tuple[str, dict | None] | None:
    """Flavour and upstream of the node services that run now, as the last rendering recorded them."""
    services = state.get("node_services") or {}
    if not services.get("run") or services.get("flavour") not in dataplane.FLAVOUR_USERS:
        return None
    return services["flavour"], services.get("upstream")


def _rendered_source(kind: str, inputs: list, entry: dict) -> str:
    """Digest binding a rendered entry (everything in it but this digest: version, files, certificate window,
    upstream) to every input it was rendered from; any change to either side, the certificate included, gives
    another digest. Only digests are stored: the material itself is already in the entry."""
    return hashing.sha256_hex([kind, inputs, {key: value for key, value in entry.items() if key != "source"}])


def _rendered_before(kind: str, inputs: list, known: dict, now_seconds: int) -> bool:
    """Exactly these files were rendered from exactly these inputs and their certificate verified against this
    CA, and it is not due for renewal yet: rendering again (cryptography, bcrypt, YAML) gives the same entry."""
    return bool(known.get("source")) and known["source"] == _rendered_source(kind, inputs, known) \
        and _within(known.get("cert_window"), now_seconds)


def _record_source(kind: str, inputs: list, entry: dict) -> None:
    """Give a freshly rendered entry its certificate window and digest (none when the certificate cannot be
    read: the next run then renders again)."""
    window = dataplane.cert_window(entry["files"]["front.crt"])
    if window is not None:
        entry["cert_window"] = window
        entry["source"] = _rendered_source(kind, inputs, entry)


def _within(window, now_seconds: int) -> bool:
    """The run's time (whole seconds) lies in [not before, not after - renewal margin] of the recorded
    certificate window."""
    if not isinstance(window, list) or len(window) != 2 or not all(isinstance(t, str) for t in window):
        return False
    start, renew = (clock.utc_seconds(t) for t in window)
    if start is not None and renew is not None:
        return start <= now_seconds <= renew
    from datetime import datetime  # a window the module did not write as whole-second UTC

    try:
        start, renew = (datetime.fromisoformat(t) for t in window)
    except ValueError:
        return False
    if start.tzinfo is None or renew.tzinfo is None:
        return False
    now = clock.from_seconds(now_seconds)
    return start <= now <= renew


def _pki_source(ca: dict, scraper: dict, window) -> str:
    """Digest binding the CA and scraper key pairs to the window in which both stay reusable."""
    return hashing.sha256_hex(["pki/1", ca.get("cert"), ca.get("key"), scraper.get("cert"), scraper.get("key"),
                               window])


def _users_source(checked: dict) -> str:
    """Digest of the users ensure_users returned (names, passwords, verified hashes), so a run finding exactly
    them again skips the bcrypt check. Only the digest is stored: the users themselves are in the state."""
    return hashing.sha256_hex(["users/1", checked])


def _common_window(windows: list) -> list[str] | None:
    """The times inside every window (each from pki.reuse_window), or None if one is missing or they do not meet."""
    if not windows or any(w is None for w in windows):
        return None
    from datetime import datetime

    start = max(windows, key=lambda w: datetime.fromisoformat(w[0]))[0]
    renew = min(windows, key=lambda w: datetime.fromisoformat(w[1]))[1]
    return [start, renew] if datetime.fromisoformat(start) <= datetime.fromisoformat(renew) else None


def render_node_services(run: Run, flavour: str, upstream: dict | None) -> None:
    source = hashing.sha256_hex([flavour, upstream, run.state.get("pki"), run.state.get("users"),
                                 run.state.get("http_secret")])
    if run.rendered_node_services == source:
        return  # the base already rendered exactly this
    run.rendered_node_services = source
    ca = (run.state.get("pki") or {}).get("ca")
    users = run.state.get("users", {})
    if not ca or not all(key in users for key in dataplane.FLAVOUR_USERS[flavour]):
        return
    masters, _excluded = run.masters()
    previous = run.state.get("node_services", {}).get("nodes", {})

    def inputs_of(master: dataplane.Master) -> list:
        return [master, masters, flavour, upstream, ca["cert"], ca["key"], users, run.state.get("http_secret", ""),
                run.inp.cluster_domain, run.inp.images, run.inp.proxy_env]

    def rendered_before(master: dataplane.Master) -> bool:
        return _rendered_before(NODE_SERVICES, inputs_of(master), previous.get(master.name) or {},
                                run.inp.now_seconds)

    kept = {master.name for master in masters if rendered_before(master)}
    if len(kept) < len(masters):
        # Restored users may carry a hash that does not verify (or is no hash at all): the running data
        # plane gets a hash of the same password, so its clients keep working (SPEC 5.11). bcrypt runs
        # only here, when something is rendered anyway.
        from . import users as users_mod

        repaired = {key: users_mod.with_usable_hash(users[key]) if key in dataplane.FLAVOUR_USERS[flavour]
                    else users[key] for key in users}
        if repaired != users:
            users = run.state["users"] = repaired
            kept = {master.name for master in masters if rendered_before(master)}
    nodes = {}
    for master in masters:
        inputs = inputs_of(master)
        known = previous.get(master.name) or {}
        if master.name in kept:
            nodes[master.name] = known
            continue
        entry, reused = dataplane.node_services_files(
            master, masters, flavour, upstream, run.ca(), users, run.state.get("http_secret", ""),
            run.inp.cluster_domain, known.get("files"),
            run.inp.reusable_certs.get(f"registry-node-config-{master.name}"), run.inp.now,
            images=run.inp.images, env=run.inp.proxy_env)
        if not reused and not previous.get(master.name):
            run.log("Generating node certificate", node=master.name)
        _record_source(NODE_SERVICES, inputs, entry)
        nodes[master.name] = entry
    # flavour and upstream are kept (and persisted) so a later run, or a restart, renders exactly
    # what runs now even when the target has moved on (SPEC 4.10.2)
    services = {"run": True, "nodes": nodes, "flavour": flavour}
    if upstream:
        services["upstream"] = copy.deepcopy(upstream)
    run.state["node_services"] = services


def render_incluster_proxy(run: Run, upstream: dict) -> None:
    known = run.state.get("incluster_proxy") or {}
    ca_pair = (run.state.get("pki") or {}).get("ca") or {}
    inputs = [upstream, ca_pair.get("cert"), ca_pair.get("key"), run.state.get("http_secret", ""),
              run.inp.cluster_domain]
    if _rendered_before(INCLUSTER_PROXY, inputs, known, run.inp.now_seconds):
        return  # a converged Direct run ends here (issue #15)
    ca = run.ca()
    if ca is None or not run.state.get("http_secret"):
        return
    files, _reused = dataplane.incluster_proxy_files(
        upstream, ca, run.state["http_secret"], run.inp.cluster_domain, known.get("files"),
        run.inp.reusable_certs.get("registry-incluster-proxy-config"), run.inp.now)
    # the upstream is kept (and persisted) for the same reason as the node services' source
    entry = {**dataplane.with_version(files), "upstream": copy.deepcopy(upstream)}
    _record_source(INCLUSTER_PROXY, inputs, entry)
    run.state["incluster_proxy"] = entry


def uses_lb(mirror_map: dict) -> bool:
    return any(m.get("host") == node_config.LB_ENDPOINT for entries in mirror_map.values() for m in entries)


def publish_lb(run: Run, needed: bool) -> None:
    """The LB payload goes with the containerd payload: endpoints only while nodes may use the LB."""
    endpoints = [f"{ip}:5001" for ip in run.master_ips()] if needed else []
    config = run.state.setdefault("node_config", {})
    current = config.get("lb")
    if current is not None and run.state.get("lb_source") == _lb_source(endpoints, run.inp.lb_image, current):
        return  # exactly this payload was rendered from exactly these endpoints and image
    from . import lb  # loaded only when the payload is rendered (issue #15)

    config["lb"] = lb.lb_payload(endpoints, run.inp.lb_image)
    run.state["lb_source"] = _lb_source(endpoints, run.inp.lb_image, config["lb"])


def _lb_source(endpoints: list[str], image: str, payload: dict) -> str:
    return hashing.sha256_hex(["lb/1", endpoints, image, payload])


def publish_containerd(run: Run, kind: str, mirror_map: dict) -> dict:
    config = run.state.setdefault("node_config", {})
    payload = config.get("containerd")
    # rendered (and tomli_w loaded) only when the kind, the mirrors or the payload differ from the recorded digest
    if payload is None or run.state.get("containerd_source") != _containerd_source(kind, mirror_map, payload):
        payload = node_config.containerd_payload(kind, mirror_map)
        config["containerd"] = payload
        run.state["containerd_source"] = _containerd_source(kind, mirror_map, payload)
    publish_lb(run, uses_lb(mirror_map))
    return payload


def _containerd_source(kind: str, mirror_map: dict, payload: dict) -> str:
    return hashing.sha256_hex(["containerd/1", kind, mirror_map, payload])


def render_running(run: Run) -> None:
    """What runs now, re-rendered from its recorded source (fresh certificates when due, new master
    addresses), never from the target: a stage moves it to the target when its turn comes."""
    try:
        _render_running(run)
    except ValueError as exc:
        from . import pki  # already loaded when it raised; a converged run never imports it

        if not isinstance(exc, pki.CannotIssue):
            raise
        # A certificate is due and the restored CA cannot sign it (its key does not match, or it expires
        # too soon): without a certificate nothing can be rendered, so the CA is replaced as stage
        # ensure_secrets would replace it (SPEC 5.10), and everything is issued again from the new one.
        known = run.state.get("pki") or {}
        ca, _generated = pki.ensure_ca(known.get("ca"), run.inp.now)
        scraper, _reused = pki.ensure_scraper(ca, known.get("scraper"), run.inp.now)
        run.state["pki"] = {"ca": ca.to_dict(), "scraper": scraper.to_dict()}
        run.log("Generating new CA")
        _render_running(run)


def _render_running(run: Run) -> None:
    source = node_services_source(run.state)
    if source:
        render_node_services(run, *source)
    running_upstream = (run.state.get("incluster_proxy") or {}).get("upstream")
    if running_upstream:
        render_incluster_proxy(run, running_upstream)


def render_base(run: Run) -> None:
    state = run.state
    state.setdefault("node_config", {}).setdefault("containerd", node_config.containerd_payload(KIND_NONE, None))
    render_running(run)
    state.setdefault("node_services", {"run": False, "nodes": {}})
    state.setdefault("registry_service", SERVICE_NONE)
    state.setdefault("ingress_enabled", False)
    # master addresses are re-derived every run, so a master change reaches the LB without a switch
    publish_lb(run, bool(state["node_config"].get("lb", {}).get("endpoints")))


# -- stages --------------------------------------------------------------------------------------
StageResult = tuple[bool | None, str]   # None: cannot tell yet, keep what is recorded


def idle_checker_params() -> dict:
    """No registries to check: the checker reports 'Stopped' and ready."""
    return {"registries": {}, "checkMode": "Default",
            "version": hashing.sha256_hex({"registries": {}, "checkMode": "Default", "target_mode": None})}


def checker_params(run: Run, target: dict) -> dict:
    registries: dict[str, dict] = {}
    if target["mode"] == "Local":
        ca = run.state.get("pki", {}).get("ca", {}).get("cert", "")
        ro = run.state.get("users", {}).get("ro", {})
        for master in run.masters()[0]:
            registries[master.name] = {"address": f"{master.ip}:5001/system/deckhouse", "scheme": "HTTPS", "ca": ca,
                                       "username": ro.get("name", ""), "password": ro.get("password", "")}
    else:
        entry = {"address": f"{target['host']}/{target['path']}", "scheme": target.get("scheme", "HTTPS")}
        for key in ("ca", "username", "password"):
            if target.get(key):
                entry[key] = target[key]
        registries[target["host"]] = entry
    check_mode = target.get("checkMode", "Default")
    version = hashing.sha256_hex({"registries": registries, "checkMode": check_mode, "target_mode": target["mode"]})
    return {"registries": registries, "checkMode": check_mode, "version": version}


def stage_checker(run: Run, target: dict) -> StageResult:
    run.checker_params = checker_params(run, target)
    if not run.inp.checker_restored:
        # not "not ready" but unknown: the run keeps every condition as it is and goes no further
        # (SPEC 4.4: a status, and its lastTransitionTime, changes only on a real change)
        return None, ""
    status = run.inp.checker_state or {}
    if status.get("version") != run.checker_params["version"]:
        return False, messages.CHECKER_INITIALIZING
    return bool(status.get("ready")), str(status.get("message") or "")


def stage_preflight(run: Run, target: dict) -> StageResult:
    current = cond.find(run.state.get("conditions", []), "ContainerdConfigPreflightReady")
    if current and current.get("status") == "True":
        # passed for this target; finishing the switch must not reword it (the run has to converge)
        return True, current.get("message", "")
    if run.params.get("actual"):
        return True, messages.preflight_ready_existing()
    problems = []
    for node in run.inp.nodes:
        if node.containerd_config == "default":
            continue
        problems.append((node.name, "custom" if node.containerd_config == "custom" else "unknown"))
    if problems:
        return False, messages.preflight_unready(len(run.inp.nodes), problems)
    return True, messages.preflight_ready_all(len(run.inp.nodes))


def stage_ensure_secrets(run: Run, target: dict) -> StageResult:
    from . import users

    known = run.state.get("pki", {})
    material = [known.get("ca"), known.get("scraper"), run.state.get("http_secret"), run.state.get("users")]
    checked = known.get("checked") or {}
    if known.get("ca") and known.get("scraper") and checked.get("source") \
            and checked["source"] == _pki_source(known["ca"], known["scraper"], checked.get("window")) \
            and _within(checked.get("window"), run.inp.now_seconds):
        # exactly this CA and scraper certificate passed the checks below and neither is due for renewal
        pair = {"ca": {"cert": known["ca"]["cert"], "key": known["ca"]["key"]},
                "scraper": {"cert": known["scraper"]["cert"], "key": known["scraper"]["key"]}}
        window = checked["window"]
    else:
        from . import pki

        existing = known.get("ca")
        previous = pki.KeyPair(existing["cert"], existing["key"]) if existing else None
        ca, generated = pki.ensure_ca(previous, run.inp.now)
        if generated:
            run.log("Generating new CA")
        # the metrics scraper's client certificate follows the CA (a new CA issues a new one)
        scraper, _reused = pki.ensure_scraper(ca, known.get("scraper"), run.inp.now)
        pair = {"ca": {"cert": ca.cert, "key": ca.key}, "scraper": scraper.to_dict()}
        window = _common_window([pki.reuse_window(ca.cert), pki.reuse_window(scraper.cert)])
    run.state["pki"] = pair
    if window:
        pair["checked"] = {"source": _pki_source(pair["ca"], pair["scraper"], window), "window": window}
    run.state["http_secret"] = users.ensure_http_secret(run.state.get("http_secret"))
    wanted = USERS_FOR[target["mode"]]
    current = run.state.get("users", {})
    if wanted:
        checked = {key: current.get(key) for key in wanted}
        if run.state.get("users_source") != _users_source(checked):
            checked = users.ensure_users(wanted, current)
        # else: exactly these users came out of ensure_users, their bcrypt hashes verified, and it would
        # return them unchanged; a restart (no recorded digest) or any edit checks them all again
        run.state["users"] = {**current, **checked}
        run.state["users_source"] = _users_source(checked)
    if target["mode"] == "Local":
        run.state["ingress_enabled"] = True
    if material != [pair["ca"], pair["scraper"], run.state["http_secret"], run.state.get("users")]:
        # The base rendered what runs now from the material replaced above; no later stage of this
        # pipeline may render it again (the in-cluster proxy under a Proxy target, the node services
        # under a Direct one), so it is rendered here, or the next run would do it (SPEC 4.2).
        render_running(run)
    return True, ""


def stage_node_services(run: Run, target: dict) -> StageResult:
    flavour = target["mode"]
    render_node_services(run, flavour, upstream_of(target) if flavour == "Proxy" else None)
    masters, excluded = run.masters()
    nodes = run.state["node_services"]["nodes"]
    pods = {p.node: p for p in run.inp.mirror_pods if p.mirror}
    waiting = []
    all_masters = [n for n in run.inp.nodes if n.master]
    for node in all_masters:
        if node.name in excluded:
            waiting.append((node.name, "no_ip", ""))
        elif not node.ready:
            waiting.append((node.name, "not_ready", ""))
        else:
            expected = nodes.get(node.name, {}).get("version", "")
            pod = pods.get(node.name)
            if pod is None or not pod.ready or pod.config_version != expected:
                waiting.append((node.name, "pod", expected))
    if waiting or not all_masters:
        return False, messages.node_services_waiting(len(all_masters), waiting)
    return True, ""


def _nodes_at(run: Run, version: str) -> tuple[bool, str]:
    if run.inp.ngc_versions.get(CONTAINERD_NGC) != version:
        return False, messages.config_not_rendered()
    waiting = [(n.name, n.version, version) for n in run.inp.nodes if n.version != version]
    if waiting:
        return False, messages.nodes_waiting(len(run.inp.nodes), waiting)
    return True, ""


def stage_transition(run: Run, target: dict) -> StageResult:
    target_params = target_node_params(run, target)
    actual = actual_node_params(run)
    if actual is not None and not run.params.get("actual"):
        # Recorded before the first publish: deckhouse-registry moves to the new path later in
        # this switch, and the old half of the transitional config must not move with it.
        run.params["actual"] = actual
    if actual == target_params:
        return True, ""
    published = run.state["node_config"]["containerd"]
    final = node_config.containerd_payload(KIND_FINAL, _mirrors_for(run, target_params))
    if published.get("kind") == KIND_FINAL and published.get("version") == final["version"]:
        return True, ""
    merged = node_config.transitional(_mirrors_for(run, actual), _mirrors_for(run, target_params))
    payload = publish_containerd(run, KIND_TRANSITIONAL, merged)
    ready, message = _nodes_at(run, payload["version"])
    run.done_text = messages.nodes_updated(len(run.inp.nodes), payload["version"])
    return ready, message


def stage_incluster_proxy(run: Run, target: dict) -> StageResult:
    render_incluster_proxy(run, upstream_of(target))
    expected = run.state["incluster_proxy"]["version"]
    deployment = run.inp.incluster
    if deployment is None:
        return False, messages.INCLUSTER_DEPLOYING
    if deployment.version != expected:
        return False, messages.incluster_version_mismatch(messages.short_version(deployment.version),
                                                          messages.short_version(expected))
    status = messages.deployment_status(
        INCLUSTER_NAME, deployment.observed_generation >= deployment.generation, deployment.replicas,
        deployment.updated, deployment.total, deployment.available)
    if status is not None:
        return False, messages.incluster_in_progress(status)
    run.done_text = messages.INCLUSTER_DONE
    return True, ""


def desired_registry(run: Run, target: dict) -> dict:
    mode = target["mode"]
    if mode == "Unmanaged":
        return deckhouse_registry.unmanaged(target)
    ca = run.state["pki"]["ca"]["cert"]
    if mode == "Direct":
        return deckhouse_registry.managed(ca, target.get("username"), target.get("password"))
    ro = run.state["users"]["ro"]
    return deckhouse_registry.managed(ca, ro["name"], ro["password"])


def stage_switch(run: Run, target: dict) -> StageResult:
    run.state["registry_service"] = SERVICE_FOR[target["mode"]]
    desired = desired_registry(run, target)
    run.state["deckhouse_registry"] = deckhouse_registry.to_values(desired)
    live = run.inp.live_registry
    if not deckhouse_registry.equal(live, desired):
        run.registry_patch = deckhouse_registry.merge_patch(live, desired)
        return False, messages.SWITCH_UPDATING
    leaders = run.inp.deckhouse_pods
    if not leaders:
        return False, messages.SWITCH_WAITING_POD
    pod = leaders[0]
    if pod.registry_version != deckhouse_registry.checksum(desired):
        return False, messages.SWITCH_APPLYING
    if not pod.ready:
        return False, messages.SWITCH_WAITING_READY
    return True, ""


def stage_final(run: Run, target: dict) -> StageResult:
    target_params = target_node_params(run, target)
    payload = publish_containerd(run, KIND_FINAL, _mirrors_for(run, target_params))
    # From now on every node has the target's mirrors: in the transitional config it already runs
    # or in the final one it is applying. The target is what all nodes share, so a revert or any
    # next switch starts its transitional config from it (SPEC 4.9), even before Final completes.
    run.params["actual"] = target_params
    ready, message = _nodes_at(run, payload["version"])
    run.done_text = messages.nodes_updated(len(run.inp.nodes), payload["version"])
    return ready, message


def needs_node_services_cleanup(run: Run) -> bool:
    return run.state.get("node_services", {}).get("run") or any(p.mirror for p in run.inp.mirror_pods)


def stage_cleanup_node_services(run: Run, target: dict) -> StageResult:
    run.state["node_services"] = {"run": True, "nodes": {}}
    remaining = sorted({p.node for p in run.inp.mirror_pods if p.mirror})
    if remaining:
        return False, messages.cleanup_node_services_waiting(remaining)
    run.state["node_services"] = {"run": False, "nodes": {}}
    return True, ""


def needs_incluster_cleanup(run: Run) -> bool:
    # a cleanup that already started is evaluated to its end, so its condition cannot go stale
    started = cond.find(run.state.get("conditions", []), "CleanupInClusterProxy") is not None
    return bool(run.state.get("incluster_proxy")) or run.inp.incluster is not None or started


def stage_cleanup_incluster(run: Run, target: dict) -> StageResult:
    run.state.pop("incluster_proxy", None)
    if run.inp.incluster is not None:
        return False, messages.INCLUSTER_STOPPING
    run.done_text = messages.INCLUSTER_STOPPED
    return True, ""


Stage = tuple[str | None, Callable[[Run, dict], StageResult], Callable[[Run], bool] | None]

PIPELINES: dict[str, list[Stage]] = {
    "Direct": [
        ("RegistryContainsRequiredImages", stage_checker, None),
        ("ContainerdConfigPreflightReady", stage_preflight, None),
        (None, stage_ensure_secrets, None),
        ("TransitionContainerdConfigReady", stage_transition, None),
        ("InClusterProxyReady", stage_incluster_proxy, None),
        ("DeckhouseRegistrySwitchReady", stage_switch, None),
        ("FinalContainerdConfigReady", stage_final, None),
        ("CleanupNodeServices", stage_cleanup_node_services, needs_node_services_cleanup),
    ],
    "Proxy": [
        ("RegistryContainsRequiredImages", stage_checker, None),
        ("ContainerdConfigPreflightReady", stage_preflight, None),
        (None, stage_ensure_secrets, None),
        ("NodeServicesReady", stage_node_services, None),
        ("TransitionContainerdConfigReady", stage_transition, None),
        ("DeckhouseRegistrySwitchReady", stage_switch, None),
        ("FinalContainerdConfigReady", stage_final, None),
        ("CleanupInClusterProxy", stage_cleanup_incluster, needs_incluster_cleanup),
    ],
    "Local": [
        ("ContainerdConfigPreflightReady", stage_preflight, None),
        (None, stage_ensure_secrets, None),
        ("NodeServicesReady", stage_node_services, None),
        ("RegistryContainsRequiredImages", stage_checker, None),
        ("TransitionContainerdConfigReady", stage_transition, None),
        ("DeckhouseRegistrySwitchReady", stage_switch, None),
        ("FinalContainerdConfigReady", stage_final, None),
        ("CleanupInClusterProxy", stage_cleanup_incluster, needs_incluster_cleanup),
    ],
    "Unmanaged": [
        ("RegistryContainsRequiredImages", stage_checker, None),
        ("ContainerdConfigPreflightReady", stage_preflight, None),
        ("TransitionContainerdConfigReady", stage_transition, None),
        ("DeckhouseRegistrySwitchReady", stage_switch, None),
        ("FinalContainerdConfigReady", stage_final, None),
        ("CleanupNodeServices", stage_cleanup_node_services, needs_node_services_cleanup),
        ("CleanupInClusterProxy", stage_cleanup_incluster, needs_incluster_cleanup),
    ],
}


def tidy_and_finalise(run: Run, target: dict) -> None:
    mode = target["mode"]
    state = run.state
    if mode == "Direct":
        state["ingress_enabled"] = False
        state.pop("users", None)
        state.pop("users_source", None)
    elif mode == "Proxy":
        state["ingress_enabled"] = False
        state["users"] = {"ro": state["users"]["ro"]}
    elif mode == "Unmanaged":
        for key in ("pki", "http_secret", "users", "users_source"):
            state.pop(key, None)
        state["ingress_enabled"] = False
    if state.get("mode") != mode:
        run.log("Mode switch finished", mode=mode)
    state["mode"] = mode
    if mode == "Local":
        run.params.pop("unmanaged", None)
    elif not target.get("legacy"):
        run.params["unmanaged"] = copy.deepcopy(target)


def run_pipeline(run: Run, target: dict) -> bool:
    for type_, stage, applies in PIPELINES[target["mode"]]:
        if applies is not None and not applies(run):
            continue
        run.done_text = ""
        ready, message = stage(run, target)
        if ready is None:
            run.unknown = True
            return False
        if type_ is None:
            continue
        reason = cond.REASON_READY if type_ in ("RegistryContainsRequiredImages", "ContainerdConfigPreflightReady") else ""
        if ready:
            run.set_condition(type_, True, reason, message if reason else "")
        else:
            run.set_condition(type_, False, cond.REASON_PROCESSING, message)
            return False
    tidy_and_finalise(run, target)
    return True


# -- the run -------------------------------------------------------------------------------------

def adopt(run: Run, seed: dict, target: dict) -> bool:
    """The installer already configured nodes for the target: take its CA and users and start there."""
    from . import users as users_mod

    state = run.state
    if "pki" in seed:
        state["pki"] = seed["pki"]
    if "users" in seed:
        # the installer's hash may use another cost; the password stays, the hash is refreshed
        state["users"] = users_mod.ensure_users(list(seed["users"]), seed["users"])
    state["mode"] = target["mode"]
    state["target_mode"], state["target_legacy"] = target["mode"], bool(target.get("legacy"))
    if target["mode"] != "Unmanaged" or not target.get("legacy"):
        try:
            run.params["actual"] = target_node_params(run, target)
        except ValueError:
            return False
    # the installer's data plane runs for the target: the base renders it from this run on
    if target["mode"] in ("Direct", "Proxy", "Local"):
        state["http_secret"] = users_mod.ensure_http_secret(state.get("http_secret"))
    if target["mode"] == "Direct" and upstream_of(target):
        state["incluster_proxy"] = {"upstream": upstream_of(target)}
    elif target["mode"] in ("Proxy", "Local"):
        services = {"run": True, "nodes": {}, "flavour": target["mode"]}
        if target["mode"] == "Proxy":
            services["upstream"] = upstream_of(target)
        state["node_services"] = services
    run.log("Adopted the installer's registry configuration", mode=target["mode"])
    return True


def target_hash(state: dict) -> str:
    """registry.internal.orchestrator.hash: identity of the requested target (SPEC 4.1)."""
    return hashing.sha256_hex({"params": state["params"]["target"], "target_mode": state["target_mode"],
                               "target_legacy": state["target_legacy"]})


def reconcile(previous: dict, inputs: Inputs, *, consume: bool = False) -> Outcome:
    """The next state from the previous one. With `consume` the caller hands `previous` over (the hook, whose
    values get the outcome's state in its place) and the run builds on it instead of on a copy."""
    fresh_start = not (previous or {}).get("mode")
    state = (previous if previous is not None else {}) if consume else plain_copy(previous or {})
    run = Run(inputs, state)
    if not state.get("mode"):
        run.log("State has no mode set, will set to Unmanaged")
        state["mode"] = "Unmanaged"
    params = run.params
    params.setdefault("target", {"mode": "Unmanaged", "legacy": True})
    state.setdefault("target_mode", params["target"]["mode"])
    state.setdefault("target_legacy", bool(params["target"].get("legacy")))
    state.setdefault("conditions", [])

    verdict = inputs.verdict
    blocked_by = None
    if verdict.valid:
        wanted = verdict.params
        in_progress = state["target_mode"] if state["mode"] != state["target_mode"] else None
        blocked_by = transitions.blocking_source(state["mode"], in_progress, wanted["mode"], wanted["legacy"])
        if blocked_by is None:
            params["target"] = copy.deepcopy(wanted)
    else:
        run.log("Invalid registry settings", errors=list(verdict.errors))

    adopted = False
    if inputs.adopt and verdict.valid and blocked_by is None and fresh_start:
        adopted = adopt(run, inputs.adopt, params["target"])

    target_key = (params["target"]["mode"], bool(params["target"].get("legacy")))
    if (state["target_mode"], state["target_legacy"]) != target_key:
        run.log("Mode change", mode=state["mode"], target_mode=target_key[0])
        state["target_mode"], state["target_legacy"] = target_key
        state["conditions"] = []

    render_base(run)
    target = effective_target(state)
    if blocked_by is not None:
        # hold: the base rendering above keeps everything exactly as it is
        text = messages.transition_not_supported(blocked_by, verdict.params["mode"])
        run.set_condition("ErrTransitionNotSupported", True, cond.REASON_ERROR, text)
        run.set_condition("Ready", False, cond.REASON_ERROR, text)
    else:
        state["conditions"] = [c for c in state["conditions"] if c["type"] != "ErrTransitionNotSupported"]
        if target is None:
            # legacy Unmanaged and the module never published node config: nothing to manage
            state["mode"] = "Unmanaged"
            run.set_condition("Ready", True, cond.REASON_READY, "")
        elif not inputs.bootstrapped and target["mode"] != state["mode"]:
            run.set_condition("Ready", False, cond.REASON_PROCESSING, messages.bootstrap_hold(target["mode"]))
        elif run_pipeline(run, target):
            run.set_condition("Ready", True, cond.REASON_READY, "")
        elif not run.unknown or cond.find(state["conditions"], "Ready") is None:
            run.set_condition("Ready", False, cond.REASON_PROCESSING, messages.transitioning(target["mode"]))

    if not verdict.valid:
        kept = settings.mode_label(state["target_mode"], state["target_legacy"])
        run.set_condition("Ready", False, cond.REASON_INVALID,
                          settings.invalid_input_message(inputs.generation, verdict.errors, kept))
    final_ready = cond.find(state["conditions"], "Ready")["status"] == "True"
    return Outcome(state=state, ready=final_ready, checker_params=run.checker_params,
                   registry_patch=run.registry_patch, events=run.events,
                   transition_not_supported=blocked_by is not None, adopted=adopted)

