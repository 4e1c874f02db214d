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
"""Reading a real cluster through kubectl into the simulator's cluster format.

The objects are the ones the module's bindings watch: ModuleConfig 'deckhouse', Nodes, the module's
Secrets, Deployments and Pods in d8-system, and its NodeGroupConfigurations. Global values are built
from what the cluster stores (the ClusterConfiguration Secret, the bootstrap flag, deckhouse-registry)
on top of the built-in example's globals (image digests and the like), or taken from a file.

`dump` writes them out; by default every secret value is replaced by a placeholder the module
accepts or regenerates, so a redacted dump still simulates (see `redact_for_dump`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from . import cluster as cluster_mod

NAMESPACE = "d8-system"
STATE_SECRETS = ["registry-state", "registry-private-state", "registry-pki", "registry-user-ro", "registry-user-rw",
                 "registry-user-mirror-puller", "registry-user-mirror-pusher", "registry-init",
                 "registry-checker-state", "deckhouse-registry"]
NGCS = ["d8-registry-containerd.sh", "d8-registry-node-lb.sh", "d8-registry-nodeservices.sh"]
DEPLOYMENTS = ["registry-incluster-proxy", "deckhouse"]
DROPPED_METADATA = ("managedFields", "uid", "selfLink", "creationTimestamp")


class LiveError(ValueError):
    pass


def _kubectl_bin() -> str:
    """$D8REGISTRY_KUBECTL, else kubectl on PATH, else the one `make tools` builds into .tools/bin."""
    chosen = os.environ.get("D8REGISTRY_KUBECTL")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise LiveError(f"D8REGISTRY_KUBECTL={chosen} is not an executable")
        return chosen
    found = shutil.which("kubectl")
    if found:
        return found
    local = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "kubectl"
    if local.exists():
        return str(local)
    raise LiveError("kubectl is not installed (put it on PATH, or run `make tools` for .tools/bin/kubectl)")


class Kubectl:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        self.base = [_kubectl_bin()]
        if kubeconfig:
            if not Path(kubeconfig).is_file():
                raise LiveError(f"kubeconfig {kubeconfig} does not exist")
            self.base += ["--kubeconfig", kubeconfig]
        if context:
            self.base += ["--context", context]

    def items(self, *args: str) -> list[dict]:
        """`kubectl get ... -o json` as a list of objects (a missing named object is skipped)."""
        try:
            proc = subprocess.run([*self.base, "get", *args, "--ignore-not-found", "-o", "json"],
                                  capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LiveError(f"kubectl get {' '.join(args)}: no answer in 120 s") from None
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            raise LiveError(f"kubectl get {' '.join(args)}: {lines[-1] if lines else 'failed'}")
        if not proc.stdout.strip():
            return []
        try:
            found = json.loads(proc.stdout)
        except ValueError:
            raise LiveError(f"kubectl get {' '.join(args)}: the output is not JSON") from None
        return found.get("items", []) if found.get("kind", "").endswith("List") else [found]


def _clean(obj: dict, kind: str | None = None) -> dict:
    obj = copy.deepcopy(obj)
    if kind and not obj.get("kind"):
        obj["kind"] = kind
    meta = obj.setdefault("metadata", {})
    for name in DROPPED_METADATA:
        meta.pop(name, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if "annotations" in meta and not annotations:
        meta.pop("annotations")
    return obj


def _decoded(secret: dict | None, key: str) -> str:
    raw = ((secret or {}).get("data") or {}).get(key)
    try:
        return base64.b64decode(raw).decode() if raw else ""
    except (ValueError, UnicodeDecodeError):
        return ""


def read_objects(kubectl: Kubectl) -> list[dict]:
    """Three kubectl calls: the named objects, the Nodes, and the labelled Secrets and Pods."""
    named = ["moduleconfigs.deckhouse.io/deckhouse", *(f"secrets/{n}" for n in STATE_SECRETS),
             *(f"deployments.apps/{n}" for n in DEPLOYMENTS), *(f"nodegroupconfigurations.deckhouse.io/{n}" for n in NGCS)]
    objects = kubectl.items("-n", NAMESPACE, *named)
    objects += kubectl.items("nodes")
    seen = {(o.get("kind"), o["metadata"]["name"]) for o in objects}
    for obj in kubectl.items("-n", NAMESPACE, "secrets,pods", "-l", "app in (registry,deckhouse)"):
        labels = obj["metadata"].get("labels") or {}
        if obj.get("kind") == "Secret" and labels.get("app") != "registry":
            continue
        if (obj.get("kind"), obj["metadata"]["name"]) not in seen:
            objects.append(obj)
    return [_clean(o) for o in objects]


def _set(target: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def read_globals(kubectl: Kubectl, objects: list[dict]) -> dict:
    """Global values the hooks read, from what the cluster stores, over the built-in example's."""
    globals_ = copy.deepcopy(cluster_mod.load().globals)
    config_secret = next(iter(kubectl.items("secrets", "-n", "kube-system", "d8-cluster-configuration")), None)
    text = _decoded(config_secret, "cluster-configuration.yaml")
    if text:
        try:
            configuration = yaml.safe_load(text)
        except yaml.YAMLError:
            raise LiveError("Secret kube-system/d8-cluster-configuration holds invalid YAML") from None
        if isinstance(configuration, dict):
            globals_["clusterConfiguration"] = configuration
            domain = configuration.get("clusterDomain")
            if domain:
                _set(globals_, "discovery.clusterDomain", domain)
    else:
        # no ClusterConfiguration Secret: a cluster Deckhouse did not install (CI kinds, managed clouds)
        globals_.pop("clusterConfiguration", None)
    bootstrapped = kubectl.items("configmaps", "-n", "kube-system", "d8-cluster-is-bootstrapped")
    globals_["clusterIsBootstrapped"] = bool(bootstrapped) or globals_.get("clusterIsBootstrapped", False)
    masters = [o for o in objects if o.get("kind") == "Node"
               and "node-role.kubernetes.io/control-plane" in (o["metadata"].get("labels") or {})]
    _set(globals_, "discovery.clusterMasterCount", len(masters))
    secret = next((o for o in objects if o.get("kind") == "Secret" and o["metadata"]["name"] == "deckhouse-registry"),
                  None)
    if secret is not None:
        registry = globals_.setdefault("modulesImages", {}).setdefault("registry", {})
        address, path = _decoded(secret, "address"), _decoded(secret, "path")
        registry.update({"address": address, "path": path, "scheme": _decoded(secret, "scheme") or "https",
                         "CA": _decoded(secret, "ca"), "base": address + path,
                         "dockercfg": (secret.get("data") or {}).get(".dockerconfigjson", "")})
    return globals_


def read_cluster(args, with_globals: bool = True) -> cluster_mod.Cluster:
    """The live cluster (kubectl, current context or --kubeconfig/--context) as a simulator Cluster."""
    kubectl = Kubectl(getattr(args, "kubeconfig", None), getattr(args, "context", None))
    objects = read_objects(kubectl)
    if not with_globals:
        globals_: dict = {}
    elif getattr(args, "globals", None):
        from .snapshots import load_globals

        globals_ = load_globals(args.globals)
    else:
        globals_ = read_globals(kubectl, objects)
    context = getattr(args, "context", None) or os.environ.get("KUBECONFIG", "") or "current context"
    return cluster_mod.Cluster(globals=globals_, objects=objects, description=f"live cluster ({context})")


# -- a redacted dump that still simulates ------------------------------------------------------------

SECRET_FIELDS = {"password", "license", "http_secret", "passwordHash", "password_hash"}
_AUTH_TOML = re.compile(r'^(\s*auth\s*=\s*)"[^"]*"', re.MULTILINE)


def placeholder(value: str) -> str:
    """The same secret always gives the same placeholder, so equal credentials stay equal. 32
    alphanumerics: the module reuses such a value as a password or HTTP secret instead of replacing it."""
    return "redacted" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]


def _redact_text(text: str) -> str:
    return _AUTH_TOML.sub(lambda m: m.group(1) + '"' + base64.b64encode(b"redacted:redacted").decode() + '"', text)


def _redact_tree(data: Any) -> Any:
    """Credentials inside settings, JSON state and dockerconfigjson replaced by placeholders."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in SECRET_FIELDS and isinstance(value, str) and value:
                out[key] = placeholder(value)
            elif key == "auth" and isinstance(value, str):
                out[key] = None  # recomputed below from the redacted username and password
            else:
                out[key] = _redact_tree(value)
        if "auth" in out and out["auth"] is None:
            user, password = out.get("username", ""), out.get("password", "")
            out["auth"] = base64.b64encode(f"{user}:{password}".encode()).decode() if user else ""
        return out
    if isinstance(data, list):
        return [_redact_tree(v) for v in data]
    if isinstance(data, str) and "auth" in data:
        return _redact_text(data)
    return data


def _placeholder_pki() -> dict[str, str]:
    """A fresh CA and metrics scraper pair, made by the module's own PKI code."""
    from datetime import UTC, datetime, timedelta

    from lib import pki

    # valid from a month back: the simulator's clock starts before today, and a CA that is not valid
    # yet at the hook's "now" would be replaced (a certificate re-issue the rehearsal need not show)
    now = datetime.now(UTC) - timedelta(days=30)
    ca, _ = pki.ensure_ca(None, now)
    scraper, _ = pki.ensure_scraper(ca, None, now)
    return {"ca.crt": ca.cert, "ca.key": ca.key, "scraper.crt": scraper.cert, "scraper.key": scraper.key}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def redact_for_dump(objects: list[dict]) -> list[dict]:
    """Objects with every secret replaced so that the module, fed with them, still runs:

    - passwords, licenses and the HTTP secret (ModuleConfig, deckhouse-registry, state JSON) become
      stable placeholders `redacted-<sha256 prefix>`, and `auth` fields are recomputed from them;
    - registry-pki gets a freshly generated CA and scraper pair (the module re-issues the leaf
      certificates from it, as after a CA rotation);
    - user Secrets get a placeholder password with its hash (made by the module's own code);
    - Secrets the chart renders (node services and proxy configs, TLS pairs) are left out: the
      module renders them again from its state;
    - the installer's registry-init hand-off is left out once adopted (it is only read before that).
    """
    out = []
    pki_data = None
    for obj in objects:
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "ModuleConfig":
            out.append(_redact_tree(obj))
            continue
        if obj.get("kind") != "Secret":
            out.append(obj)
            continue
        name = obj["metadata"]["name"]
        data = obj.get("data") or {}
        if name not in STATE_SECRETS:
            continue  # rendered by the chart: registry-node-config-*, TLS pairs, proxy configs
        if name == "registry-init":
            if "registry.deckhouse.io/is-applied" in (obj["metadata"].get("annotations") or {}):
                continue
            obj["data"] = {"config": _b64(yaml.safe_dump({"ca": {}, "note": "redacted by d8registry dump"}))}
            out.append(obj)
            continue
        new = {}
        for key, raw in data.items():
            try:
                text = base64.b64decode(raw).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            if key.endswith(".key") or key.endswith(".crt"):
                if name == "registry-pki":
                    pki_data = pki_data or _placeholder_pki()
                    text = pki_data.get(key, text)
                new[key] = _b64(text)
                continue
            if key == "passwordHash" and "password" in data:
                continue  # a hash of the placeholder, set with the password below
            if key == "password" and "passwordHash" in data:
                from lib import users

                new["password"] = _b64(placeholder(text))
                new["passwordHash"] = _b64(users.hash_password(placeholder(text)))
                continue
            if key in SECRET_FIELDS:
                new[key] = _b64(placeholder(text))
                continue
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                new[key] = _b64(json.dumps(_redact_tree(parsed), sort_keys=True, separators=(",", ":")))
            else:
                new[key] = _b64(_redact_text(text))
        obj["data"] = new
        out.append(obj)
    return out


def redact_globals(globals_: dict) -> dict:
    globals_ = copy.deepcopy(globals_)
    registry = (globals_.get("modulesImages") or {}).get("registry") or {}
    if registry.get("dockercfg"):
        try:
            config = json.loads(base64.b64decode(registry["dockercfg"]).decode())
            registry["dockercfg"] = _b64(json.dumps(_redact_tree(config), sort_keys=True))
        except (ValueError, UnicodeDecodeError):
            registry["dockercfg"] = ""
    return globals_


def dump(args, out) -> int:
    """`d8registry dump --live -o cluster.yaml`: the cluster in the simulator's format."""
    if not args.live:
        raise LiveError("dump reads a real cluster: add --live (current kubectl context, or --kubeconfig)")
    cluster = read_cluster(args)
    objects, globals_ = cluster.objects, cluster.globals
    if not args.show_secrets:
        objects, globals_ = redact_for_dump(objects), redact_globals(globals_)
    note = "secrets included" if args.show_secrets else "secrets replaced by placeholders (d8registry dump)"
    document = {"description": f"{cluster.description}, {note}", "globals": globals_, "objects": objects}
    text = yaml.safe_dump(document, sort_keys=False, width=120)
    if args.output and args.output != "-":
        path = Path(args.output)
        path.write_text(text, encoding="utf-8")
        if args.show_secrets:
            path.chmod(0o600)
        kinds: dict[str, int] = {}
        for obj in objects:
            kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        print(f"wrote {path}: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + f" ({note})", file=out)
    else:
        print(text, file=out, end="")
    return 0
