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
"""d8-registry-containerd.sh run in temp roots (SPEC 6.2-6.4, 6.7)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib

import jsonschema
import pytest
from lib import node_config

from .conftest import CONFIG_V2, CONFIG_V3, MARKER, REPO, mode, render_node_config, version_of

NGC = "d8-registry-containerd.sh"
HOSTS = "etc/containerd/registry.d"
STATE = "var/lib/d8-registry/containerd-hosts-state.json"
LABEL = "node.deckhouse.io/containerd-config-registry"
VERSION = "registry.deckhouse.io/version"
CONFIG_PATH = "/etc/containerd/registry.d"

# The key path containerd 2.x reads (SPEC 6.4), as a schema over the parsed config.toml.
V3_KEY_PATH = {
    "type": "object",
    "required": ["version", "plugins"],
    "properties": {
        "version": {"const": 3},
        "plugins": {
            "type": "object",
            "required": ["io.containerd.cri.v1.images"],
            "properties": {"io.containerd.cri.v1.images": {
                "type": "object", "required": ["registry"],
                "properties": {"registry": {
                    "type": "object", "required": ["config_path"],
                    "properties": {"config_path": {"const": CONFIG_PATH}},
                    "not": {"anyOf": [{"required": ["mirrors"]}, {"required": ["configs"]}, {"required": ["auths"]}]},
                }},
            }},
        },
    },
}


def expected_files(payload: dict) -> dict[str, str]:
    return {f"{d}/{f}": text for d, files in payload["hosts"].items() for f, text in files.items()}


def node_with(make_node, config: str | None, name: str = "worker-0", **kwargs):
    node = make_node(name, **kwargs).with_kubelet()
    if config is not None:
        node.write("etc/containerd/config.toml", config)
    return node


def kubectl_mutations(node) -> list[list[str]]:
    return [argv for argv in node.calls("kubectl") if "label" in argv or "annotate" in argv]


def hosts_payload(dirs: dict[str, list[dict]], kind: str = "Final") -> dict:
    return node_config.containerd_payload(kind, dirs)


def content_for(payload: dict) -> str:
    return render_node_config({"containerd": payload}).content(NGC)


# -- first run, second run ------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["direct", "proxy"])
@pytest.mark.parametrize("config", ["v2", "v3"])
def test_first_run_writes_the_payload_and_the_second_changes_nothing(scenarios, make_node, scenario, config):
    rendered = scenarios[scenario]
    payload = rendered.state["node_config"]["containerd"]
    node = node_with(make_node, CONFIG_V2 if config == "v2" else CONFIG_V3,
                     name="worker-0" if config == "v2" else "worker-1")
    content = rendered.content(NGC)

    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert node.files_under(HOSTS) == expected_files(payload)
    for relative in expected_files(payload):
        assert mode(node.path(f"{HOSTS}/{relative}")) == 0o644
    for directory in payload["hosts"]:
        assert mode(node.path(f"{HOSTS}/{directory}")) == 0o755
    state = json.loads(node.read(STATE))
    assert state == {"format": 1, "version": payload["version"],
                     "dirs": {d: sorted(f) for d, f in payload["hosts"].items()},
                     "configTomlInsertedFor": payload["version"]}
    assert node.read("etc/containerd/config.toml.d8-registry.bak") == (CONFIG_V2 if config == "v2" else CONFIG_V3)
    assert node.calls("systemctl") == [["restart", "containerd"]]
    assert ["info"] in node.calls("crictl")
    assert kubectl_mutations(node) == [
        ["--kubeconfig", str(node.path("etc/kubernetes/kubelet.conf")), "label", "node", node.name, "--overwrite",
         f"{LABEL}=default"],
        ["--kubeconfig", str(node.path("etc/kubernetes/kubelet.conf")), "annotate", "node", node.name, "--overwrite",
         f"{VERSION}={payload['version']}"],
    ]
    meta = node.node_object()["metadata"]
    assert meta["labels"][LABEL] == "default" and meta["annotations"][VERSION] == payload["version"]
    assert node.temp_files() == []

    before = node.snapshot()
    proc = node.run(content)
    assert proc.returncode == 0, proc.stderr
    assert node.snapshot() == before, "the second run must not write anything"
    assert node.calls("systemctl") == []
    # only the unchanged label and annotation are sent again
    assert [(tool, argv[2]) for tool, argv in node.mutating_calls()] == [("kubectl", "label"), ("kubectl", "annotate")]


def test_without_kubelet_conf_no_api_call_is_made(scenarios, make_node):
    node = make_node("worker-0")
    node.write("etc/containerd/config.toml", CONFIG_V2)
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert node.calls("kubectl") == []
    assert node.files_under(HOSTS) == expected_files(scenarios["direct"].state["node_config"]["containerd"])
    assert "reported on the next run" in proc.stderr


def test_bb_helpers_are_used_when_defined(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2, name="worker-0")
    node.path("var/lib/bashible/discovered-node-name").unlink()
    prelude = ("bb-d8-node-name() { echo worker-0; }\n"
               "bb-log-info() { echo \"BBINFO $*\" >&2; }\n"
               "bb-log-error() { echo \"BBERROR $*\" >&2; }\n"
               "export -f bb-d8-node-name bb-log-info bb-log-error")
    proc = node.run(scenarios["direct"].content(NGC), prelude=prelude)
    assert proc.returncode == 0, proc.stderr
    assert "BBINFO d8-registry containerd: wrote" in proc.stderr
    assert [argv[4] for argv in kubectl_mutations(node)] == ["worker-0", "worker-0"]


# -- config.toml and config_path ------------------------------------------------------------------------

def test_v3_config_path_is_appended_where_containerd_2_reads_it(scenarios, make_node):
    node = node_with(make_node, CONFIG_V3, name="worker-1")
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    text = node.read("etc/containerd/config.toml")
    parsed = tomllib.loads(text)
    jsonschema.validate(parsed, V3_KEY_PATH)
    # everything that was there is still there
    assert parsed["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10"
    assert text.startswith(CONFIG_V3)


@pytest.mark.parametrize("quote", ["'", '"'])
def test_v3_config_path_goes_into_an_existing_registry_table(scenarios, make_node, quote):
    config = CONFIG_V3 + (f"    [plugins.{quote}io.containerd.cri.v1.images{quote}.registry]\n"
                          f"    [plugins.{quote}io.containerd.cri.v1.images{quote}.registry.headers]\n"
                          "      X-Meta = ['a']\n")
    node = node_with(make_node, config, name="worker-1")
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    parsed = tomllib.loads(node.read("etc/containerd/config.toml"))
    jsonschema.validate(parsed, V3_KEY_PATH)
    assert parsed["plugins"]["io.containerd.cri.v1.images"]["registry"]["headers"] == {"X-Meta": ["a"]}


def test_v2_config_path_is_inserted_after_the_registry_header(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    text = node.read("etc/containerd/config.toml")
    assert ('    [plugins."io.containerd.grpc.v1.cri".registry]\n'
            f'      config_path = "{CONFIG_PATH}"\n'
            '    [plugins."io.containerd.grpc.v1.cri".registry.headers]\n') in text
    parsed = tomllib.loads(text)
    assert parsed["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"] == CONFIG_PATH


def test_present_config_path_means_no_rewrite_and_no_restart(scenarios, make_node):
    config = CONFIG_V2.replace('    [plugins."io.containerd.grpc.v1.cri".registry]\n',
                               '    [plugins."io.containerd.grpc.v1.cri".registry]\n'
                               f'      config_path = "{CONFIG_PATH}"\n')
    node = node_with(make_node, config)
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    assert node.read("etc/containerd/config.toml") == config
    assert not node.path("etc/containerd/config.toml.d8-registry.bak").exists()
    assert node.calls("systemctl") == []
    assert json.loads(node.read(STATE))["configTomlInsertedFor"] is None


def real_containerd_default() -> str:
    return subprocess.run(["containerd", "config", "default"], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def containerd_dump(path) -> str:
    return subprocess.run(["containerd", "--config", str(path), "config", "dump"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed (make debs installs it)")
@pytest.mark.parametrize("source", ["default", "deckhouse-like", "no-registry-table"])
def test_v2_insertion_is_accepted_by_the_real_containerd(scenarios, make_node, source):
    version = subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=True).stdout
    if version.split()[2].lstrip("v").split(".")[0] != "1":
        pytest.skip("the installed containerd is not 1.x, it does not read version 2 configs")
    config = {
        "default": real_containerd_default(),  # carries `config_path = ""` and empty mirrors tables
        "deckhouse-like": CONFIG_V2,
        "no-registry-table": CONFIG_V2.split('    [plugins."io.containerd.grpc.v1.cri".registry]')[0],
    }[source]
    node = node_with(make_node, config, real_containerd=True)
    assert not (node.bin / "containerd").exists(), "the step must run the real binary here"
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert "not checked" not in proc.stderr, "the real containerd must have validated the candidate"
    dump = containerd_dump(node.path("etc/containerd/config.toml"))
    assert f'config_path = "{CONFIG_PATH}"' in dump
    assert 'registry.mirrors."' not in dump
    assert node.calls("systemctl") == [["restart", "containerd"]]


def test_a_candidate_containerd_rejects_leaves_config_toml_alone(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    node.fail(containerd_dump="always")
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 1
    assert "containerd rejects config.toml" in proc.stderr
    assert node.read("etc/containerd/config.toml") == CONFIG_V2
    assert not node.path("etc/containerd/config.toml.d8-registry.bak").exists()
    assert node.calls("systemctl") == [] and node.temp_files() == []
    assert not node.path(HOSTS).exists()


def test_containerd_that_does_not_come_back_fails_the_step_without_leftovers(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    node.fail(crictl_info="always")
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 1
    assert "did not answer crictl info" in proc.stderr
    assert node.calls("sleep") == [["1"]] * 60
    assert node.temp_files() == []
    assert [argv[2] for argv in kubectl_mutations(node)] == ["label"], "no version annotation on failure"


# -- preflight label --------------------------------------------------------------------------------------

CUSTOM_V2 = {
    "mirror table": CONFIG_V2 + '    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
                                '      endpoint = ["https://mirror.example.com"]\n',
    "configs table": CONFIG_V2 + '    [plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'
                                 '      username = "u"\n',
    "auths dotted key": CONFIG_V2.replace(
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n',
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n      auths."r.example".auth = "dTpw"\n'),
    "mirrors dotted key with spacing and single quotes": CONFIG_V2.replace(
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n',
        "    [ plugins . 'io.containerd.grpc.v1.cri' . registry ]\n"
        "      mirrors . 'docker.io' . endpoint = ['https://m']\n"),
    "mirrors inline table": CONFIG_V2.replace(
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n',
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n      mirrors = { "docker.io" = { endpoint = ["https://m"] } }\n'),
    "registry inline table": CONFIG_V2.split('    [plugins."io.containerd.grpc.v1.cri".registry]')[0].replace(
        '    sandbox_image = "registry.k8s.io/pause:3.9"\n',
        '    sandbox_image = "registry.k8s.io/pause:3.9"\n    registry = { config_path = "/etc/containerd/registry.d" }\n'),
    "foreign config_path": CONFIG_V2.replace(
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n',
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n      config_path = "/etc/containerd/certs.d"\n'),
    "unsupported version": CONFIG_V2.replace("version = 2", "version = 1"),
    "no version": CONFIG_V2.replace("version = 2\n", ""),
}


def assert_custom_and_untouched(node, before, proc):
    assert proc.returncode == 0, proc.stderr
    assert "configuration is custom" in proc.stderr
    assert node.snapshot() == before
    assert [argv[2:] for argv in kubectl_mutations(node)] == [["label", "node", node.name, "--overwrite",
                                                               f"{LABEL}=custom"]]
    assert node.calls("systemctl") == []


@pytest.mark.parametrize("case", sorted(CUSTOM_V2))
def test_custom_config_toml_is_reported_and_left_alone(scenarios, make_node, case):
    node = node_with(make_node, CUSTOM_V2[case])
    before = node.snapshot()
    assert_custom_and_untouched(node, before, node.run(scenarios["direct"].content(NGC)))


def test_missing_config_toml_is_custom(scenarios, make_node):
    node = node_with(make_node, None)
    before = node.snapshot()
    assert_custom_and_untouched(node, before, node.run(scenarios["direct"].content(NGC)))


@pytest.mark.parametrize("config, dropin_dir, custom", [
    (CONFIG_V2, "conf.d", True),
    (CONFIG_V3, "conf2.d", True),
    # each layout reads only its own drop-in dir
    (CONFIG_V2, "conf2.d", False),
    (CONFIG_V3, "conf.d", False),
])
def test_mirrors_in_drop_in_files_make_the_node_custom(scenarios, make_node, config, dropin_dir, custom):
    node = node_with(make_node, config)
    table = ('plugins."io.containerd.grpc.v1.cri".registry' if config is CONFIG_V2
             else "plugins.'io.containerd.cri.v1.images'.registry")
    node.write(f"etc/containerd/{dropin_dir}/mirror.toml", f'[{table}.mirrors."docker.io"]\nendpoint = ["https://m"]\n')
    before = node.snapshot()
    proc = node.run(scenarios["direct"].content(NGC))
    if custom:
        assert_custom_and_untouched(node, before, proc)
    else:
        assert proc.returncode == 0 and f"{LABEL}=default" in kubectl_mutations(node)[0]


def test_empty_mirror_tables_of_the_stock_config_are_not_custom(scenarios, make_node):
    config = CONFIG_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.mirrors]\n\n'
                          '    [plugins."io.containerd.grpc.v1.cri".registry.configs]\n'
                          '    [plugins."io.containerd.grpc.v1.cri".registry.auths]\n')
    node = node_with(make_node, config)
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert f"{LABEL}=default" in kubectl_mutations(node)[0]


def test_regenerated_config_is_not_rewritten_twice_for_one_version(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    content = scenarios["direct"].content(NGC)
    assert node.run(content).returncode == 0
    assert len(node.calls("systemctl")) == 1
    # another tool writes config.toml back without config_path
    node.write("etc/containerd/config.toml", CONFIG_V2)
    before = node.snapshot()
    proc = node.run(content)
    assert_custom_and_untouched(node, before, proc)
    assert "config.toml is regenerated by another tool without config_path" in proc.stderr
    # a new payload version may insert once more
    proc = node.run(scenarios["proxy"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert node.calls("systemctl") == [["restart", "containerd"]]
    assert f'config_path = "{CONFIG_PATH}"' in node.read("etc/containerd/config.toml")


# -- ownership and removal --------------------------------------------------------------------------------

CA = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZ3VhcmQAAAAAAAAAAAAAAAAAAAAwCgYIKoZIzj0EAwIw\n"
      "-----END CERTIFICATE-----\n")


def test_only_owned_entries_are_removed_and_foreign_dirs_are_untouched(make_node):
    first = hosts_payload({
        "registry.d8-system.svc:5001": [{"scheme": "https", "host": "registry.deckhouse.ru", "ca": CA,
                                         "auth": {"username": "u", "password": "p"},
                                         "rewrite": {"^system/deckhouse": "deckhouse/ee"}}],
        "nexus.example.com:8443": [{"scheme": "https", "host": "nexus.example.com:8443", "ca": CA}],
        "old.example.com": [{"scheme": "https", "host": "old.example.com"}],
    })
    second = hosts_payload({
        "registry.d8-system.svc:5001": [{"scheme": "https", "host": "registry.deckhouse.ru",
                                         "rewrite": {"^system/deckhouse": "deckhouse/ee"}}],
    })
    node = node_with(make_node, CONFIG_V2)
    # a user's dir, node-manager's state file, and a dir the module will take over
    node.write(f"{HOSTS}/docker.io/hosts.toml", 'server = "https://registry-1.docker.io"\n')
    node.write(f"{HOSTS}/deckhouse_hosts_state.json", "{}\n")
    node.write(f"{HOSTS}/registry.d8-system.svc:5001/user-notes.txt", "mine\n")
    assert node.run(content_for(first)).returncode == 0
    assert node.read(f"{HOSTS}/registry.d8-system.svc:5001/user-notes.txt") == "mine\n"

    # a file the user replaced (no marker) is no longer the module's, and a file the user added keeps a dir alive
    ca_name = node_config.ca_file_name("https", "nexus.example.com:8443")
    node.write(f"{HOSTS}/nexus.example.com:8443/{ca_name}", "user's own CA\n")
    node.write(f"{HOSTS}/old.example.com/extra.toml", "user\n")
    proc = node.run(content_for(second))
    assert proc.returncode == 0, proc.stderr

    remaining = node.files_under(HOSTS)
    assert remaining == {
        "docker.io/hosts.toml": 'server = "https://registry-1.docker.io"\n',
        "deckhouse_hosts_state.json": "{}\n",
        "registry.d8-system.svc:5001/user-notes.txt": "mine\n",
        "registry.d8-system.svc:5001/hosts.toml": second["hosts"]["registry.d8-system.svc:5001"]["hosts.toml"],
        f"nexus.example.com:8443/{ca_name}": "user's own CA\n",
        "old.example.com/extra.toml": "user\n",
    }
    state = json.loads(node.read(STATE))
    assert state["dirs"] == {"registry.d8-system.svc:5001": ["hosts.toml"]}


def test_an_emptied_dir_is_removed(make_node):
    first = hosts_payload({"a.example.com": [{"scheme": "https", "host": "a.example.com", "ca": CA}],
                           "b.example.com": [{"scheme": "https", "host": "b.example.com"}]})
    second = hosts_payload({"b.example.com": [{"scheme": "https", "host": "b.example.com"}]})
    node = node_with(make_node, CONFIG_V2)
    assert node.run(content_for(first)).returncode == 0
    assert node.path(f"{HOSTS}/a.example.com").is_dir()
    assert node.run(content_for(second)).returncode == 0
    assert not node.path(f"{HOSTS}/a.example.com").exists()
    assert sorted(node.files_under(HOSTS)) == ["b.example.com/hosts.toml"]


def test_changed_files_are_replaced_by_rename(make_node):
    first = hosts_payload({"a.example.com": [{"scheme": "https", "host": "a.example.com"}]})
    second = hosts_payload({"a.example.com": [{"scheme": "http", "host": "a.example.com"}]})
    node = node_with(make_node, CONFIG_V2)
    assert node.run(content_for(first)).returncode == 0
    path = node.path(f"{HOSTS}/a.example.com/hosts.toml")
    inode = path.stat().st_ino
    assert node.run(content_for(second)).returncode == 0
    assert path.stat().st_ino != inode, "a new file renamed over the old one, never rewritten in place"
    assert path.read_text() == second["hosts"]["a.example.com"]["hosts.toml"]
    assert node.temp_files() == []


def test_kind_none_removes_owned_dirs_and_the_state(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    node.write(f"{HOSTS}/docker.io/hosts.toml", "user\n")
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    proc = node.run(scenarios["legacy"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert node.files_under(HOSTS) == {"docker.io/hosts.toml": "user\n"}
    assert not node.path(STATE).exists()
    assert [argv[2] for argv in kubectl_mutations(node)] == ["label"], "no version annotation for kind none"


def test_api_errors_fail_the_step_and_remove_nothing(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    before = node.snapshot()
    node.fail(kubectl_label="always")
    proc = node.run(scenarios["legacy"].content(NGC))
    assert proc.returncode == 1
    assert node.snapshot() == before
    assert len(node.calls("kubectl")) == 5 and node.calls("sleep") == [["10"]] * 4


def test_a_transient_api_error_is_retried(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    node.fail(kubectl_annotate=2)
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert [argv[2] for argv in kubectl_mutations(node)] == ["label", "annotate", "annotate", "annotate"]
    assert node.calls("sleep") == [["10"], ["10"]]


def test_an_unreadable_state_file_removes_nothing(scenarios, make_node):
    node = node_with(make_node, CONFIG_V2)
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    node.write(STATE, "not json")
    written = node.files_under(HOSTS)
    proc = node.run(scenarios["legacy"].content(NGC))
    assert proc.returncode == 0
    assert "state file is unreadable" in proc.stderr
    assert node.files_under(HOSTS) == written


# -- hostile payloads ------------------------------------------------------------------------------------

def hostile(hosts=None, **overrides) -> dict:
    payload = {"kind": "Final", "hosts": hosts if hosts is not None else {"a.example.com": {"hosts.toml": f"{MARKER}\n"}}}
    payload.update(overrides)
    payload.setdefault("version", version_of(payload))
    return payload


HOSTILE = {
    "dir traversal": hostile({"../../etc": {"hosts.toml": "x"}}),
    "dir with slash": hostile({"a/b": {"hosts.toml": "x"}}),
    "dir dot": hostile({".": {"hosts.toml": "x"}}),
    "dir dotdot": hostile({"..": {"hosts.toml": "x"}}),
    "dir command substitution": hostile({"$(touch pwned)": {"hosts.toml": "x"}}),
    "dir with newline": hostile({"a.example.com\n..": {"hosts.toml": "x"}}),
    "dir with long port": hostile({"a.example.com:123456": {"hosts.toml": "x"}}),
    "dir with quote": hostile({'a"b': {"hosts.toml": "x"}}),
    "hidden file": hostile({"a.example.com": {".hidden": "x"}}),
    "file traversal": hostile({"a.example.com": {"../escape": "x"}}),
    "file with semicolon": hostile({"a.example.com": {"x;touch pwned": "x"}}),
    "file with newline": hostile({"a.example.com": {"hosts.toml\n.bashrc": "x"}}),
    "dir without files": hostile({"a.example.com": {}}),
    "content not a string": hostile({"a.example.com": {"hosts.toml": ["x"]}}),
    "unknown kind": hostile(kind="everything"),
    "final without dirs": hostile({}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_payload_fails_before_any_write(scenarios, make_node, case):
    node = node_with(make_node, CONFIG_V2)
    # an earlier good run, so there is something a confused step could remove
    assert node.run(scenarios["direct"].content(NGC)).returncode == 0
    before = node.snapshot()
    proc = node.run(content_for(HOSTILE[case]))
    assert proc.returncode == 1, proc.stderr
    assert node.snapshot() == before
    assert node.mutating_calls() == []
    assert not list(node.base.rglob("pwned"))


def test_payload_version_must_match_the_header(scenarios, make_node):
    # Helm always writes the same version twice; this content is edited by hand to prove the check exists
    content = scenarios["direct"].content(NGC)
    lines = content.split("\n")
    lines[2] = "readonly D8REG_VERSION='" + "0" * 64 + "'"
    node = node_with(make_node, CONFIG_V2)
    before = node.snapshot()
    proc = node.run("\n".join(lines))
    assert proc.returncode == 1 and "payload version does not match" in proc.stderr
    assert node.snapshot() == before and node.mutating_calls() == []


@pytest.mark.parametrize("name", ["../x", "Worker_0", "", "a" * 254, "-worker", "worker-0\nmaster-0"])
def test_hostile_node_name_fails_before_any_write(scenarios, make_node, name):
    node = node_with(make_node, CONFIG_V2)
    node.write("var/lib/bashible/discovered-node-name", name)
    before = node.snapshot()
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 1
    assert node.snapshot() == before
    assert node.mutating_calls() == []


def test_v3_insertion_is_accepted_by_the_real_containerd_2(scenarios, make_node):
    """The step's own candidate check with containerd 2.x (`make tools` builds it), whose dump quotes with '."""
    containerd2 = REPO / ".tools" / "bin" / "containerd2"
    if not containerd2.exists():
        pytest.fail("containerd 2.x is missing: run `make tools`")
    node = node_with(make_node, CONFIG_V3, name="worker-1", real_containerd=True)
    (node.bin / "containerd").symlink_to(containerd2)
    proc = node.run(scenarios["direct"].content(NGC))
    assert proc.returncode == 0, proc.stderr
    assert "not checked" not in proc.stderr, "containerd 2.x must have validated the candidate"
    jsonschema.validate(tomllib.loads(node.read("etc/containerd/config.toml")), V3_KEY_PATH)
    assert node.calls("systemctl") == [["restart", "containerd"]]


def test_ca_files_are_in_place_before_the_hosts_toml_that_names_them(make_node):
    """containerd reads hosts.toml at every pull: a hosts.toml naming a CA file not written yet fails pulls ("unable
    to read CA cert"), as `simulate --real-dataplane` caught on a switch to Local. New CA files go first."""
    first = hosts_payload({"a.example.com": [{"scheme": "https", "host": "a.example.com"}]})
    second = hosts_payload({"a.example.com": [{"scheme": "https", "host": "a.example.com"},
                                              {"scheme": "https", "host": "10.0.0.1:5001", "ca": CA}]})
    node = node_with(make_node, CONFIG_V2)
    assert node.run(content_for(first)).returncode == 0
    result = node.run(content_for(second))
    assert result.returncode == 0, result.stderr
    wrote = [line.split("wrote ", 1)[1].strip() for line in result.stderr.splitlines() if "wrote " in line]
    ca_files = [w for w in wrote if w.endswith("-ca.crt")]
    hosts_toml = f"/{HOSTS}/a.example.com/hosts.toml"
    assert ca_files and hosts_toml in wrote, wrote
    assert all(wrote.index(ca) < wrote.index(hosts_toml) for ca in ca_files), wrote
