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
"""Static checks of the data-plane image definitions in images/ (SPEC 5.2).

No image can be built here (no werf, no container engine), so these tests read the build files: they render the
werf templates with a deliberately small renderer (unknown template actions fail the test instead of being skipped),
parse the result as YAML and check the pins, the final stages and the names the chart and the example cluster use."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
EXAMPLE_CLUSTER = REPO / "cli" / "d8registry" / "examples" / "cluster-static-3m2w.yaml"
MODULE_NAME = "registry"

# SPEC 5.2: the image directories and their names in values (camelCase of the directory).
SPEC_IMAGES = {
    "registry-nginx": "registryNginx",
    "registry-distribution": "registryDistribution",
    "registry-sync": "registrySync",
    "registry-gc": "registryGc",
}

RUNTIME_USER = "64535:64535"
FINAL_BASES = {"common/distroless"}

# Template variable in a build file -> the `name` of the oss.yaml entry whose version it must equal.
OSS_PINS = {
    "registry-distribution": {"distributionVersion": "CNCF Distribution"},
    "registry-sync": {"regclientVersion": "regclient (regsync)"},
    "registry-nginx": {"nginxVersion": "nginx"},
    "registry-gc": {"busyboxVersion": "BusyBox"},
}

# The Go code is built from these module/package paths only (SPEC 5.2).
GO_PATHS = {
    "registry-distribution": {"distributionModule": "github.com/distribution/distribution/v3"},
    "registry-sync": {
        "regclientModule": "github.com/regclient/regclient",
        "regsyncPackage": "github.com/regclient/regclient/cmd/regsync",
    },
}

# Bodies of the Deckhouse build defines the files include, reduced to what matters for the YAML shape.
DEFINES = {
    "mount points for golang builds": "- fromPath: ~/go-pkg-cache\n  to: /go/pkg\n- from: tmp_dir\n  to: /root/.cache/go-build",
    "alpine packages proxy": "- apk update",
}
CONTEXT = {
    "$.ModuleName": MODULE_NAME,
    "$.SOURCE_REPO": "https://github.com",
    "$.GOPROXY": "https://proxy.golang.org",
}

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_PIN = re.compile(r'^\$(\w+)\s*:=\s*"([^"]*)"$')
_VAR = re.compile(r"^\$(\w+)$")
_INCLUDE = re.compile(r'^include\s+"([^"]+)"\s+\.(?:\s*\|\s*(nindent|indent)\s+(\d+))?$')
# A file of the module inlined as one line (werf's .Files.Get is relative to the project root).
_FILE_LINE = re.compile(r'^\$\.Files\.Get "([^"]+)" \| trim \| replace "\\n" " "$')


def camel_case(directory: str) -> str:
    first, *rest = directory.split("-")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def build_file(directory: str) -> Path:
    return IMAGES / directory / "werf.inc.yaml"


def pins_of(text: str) -> dict[str, str]:
    pins = {}
    for match in _ACTION.finditer(text):
        pin = _PIN.match(match.group(2).strip())
        if pin:
            assert pin.group(1) not in pins, f"${pin.group(1)} is defined twice"
            pins[pin.group(1)] = pin.group(2)
    return pins


def _include(name: str, filt: str | None, width: str | None) -> str:
    if name not in DEFINES:
        raise AssertionError(f"the test renderer does not know the define {name!r}")
    body = DEFINES[name]
    if filt is None:
        return body
    pad = " " * int(width)
    indented = "\n".join(pad + line for line in body.splitlines())
    return "\n" + indented if filt == "nindent" else indented


def render(directory: str) -> str:
    """Render a werf.inc.yaml the way werf's Go templates would, for the few actions these files use."""
    text = build_file(directory).read_text()
    pins = pins_of(text)
    context = dict(CONTEXT, **{"$.ImageName": directory})
    out: list[str] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        chunk = text[pos : match.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if match.group(1):
            chunk = chunk.rstrip()
        out.append(chunk)
        action = match.group(2).strip()
        if action.startswith("/*") and action.endswith("*/"):
            value = ""
        elif _PIN.match(action):
            value = ""
        elif action in context:
            value = context[action]
        elif _VAR.match(action):
            name = _VAR.match(action).group(1)
            assert name in pins, f"{directory}: ${name} is used but never defined"
            value = pins[name]
        elif _INCLUDE.match(action):
            value = _include(*_INCLUDE.match(action).groups())
        elif _FILE_LINE.match(action):
            value = (REPO / _FILE_LINE.match(action).group(1)).read_text().strip().replace("\n", " ")
        else:
            raise AssertionError(
                f"{directory}: the test renderer does not support the template action {{{{ {action} }}}}"
            )
        out.append(value)
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = text[pos:]
    out.append(tail.lstrip() if trim_next else tail)
    rendered = "".join(out)
    assert "{{" not in rendered and "}}" not in rendered, f"{directory}: template syntax left after rendering"
    return rendered


def documents(directory: str) -> list[dict]:
    docs = [doc for doc in yaml.safe_load_all(render(directory)) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict) and "image" in doc, (
            f"{directory}: every YAML document must describe an image"
        )
    return docs


def final_image(directory: str) -> dict:
    name = f"{MODULE_NAME}/{directory}"
    matches = [doc for doc in documents(directory) if doc["image"] == name]
    assert len(matches) == 1, f"{directory}: expected exactly one image named {name}"
    return matches[0]


def stage(directory: str, image: str) -> dict:
    for candidate in documents(directory):
        if candidate["image"] == image:
            return candidate
    raise AssertionError(f"{directory}: no image {image}")


def shell_text(doc: dict) -> str:
    return "\n".join(str(cmd) for cmds in (doc.get("shell") or {}).values() for cmd in (cmds or []))


def shell_text_of_all(directory: str) -> str:
    return "\n".join(shell_text(doc) for doc in documents(directory))


def oss_versions() -> dict[str, str]:
    entries = yaml.safe_load((REPO / "oss.yaml").read_text())
    return {entry["name"]: str(entry["version"]) for entry in entries}


def _semver(value: str) -> str:
    return value[1:] if value.startswith("v") else value


# --- the set of images and their names ---------------------------------------------------------------------------


def test_image_directories_are_exactly_the_spec_set():
    present = {path.parent.name for path in IMAGES.glob("*/werf.inc.yaml")} | {
        path.parent.name for path in IMAGES.glob("*/Dockerfile")
    }
    assert present == set(SPEC_IMAGES)


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_directory_has_a_build_file_and_a_readme(directory):
    assert build_file(directory).is_file(), f"images/{directory}/werf.inc.yaml is missing"
    readme = IMAGES / directory / "README.md"
    assert readme.is_file() and readme.read_text().strip(), (
        f"images/{directory}/README.md is missing or empty"
    )


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_values_name_is_the_camel_case_of_the_directory(directory):
    assert camel_case(directory) == SPEC_IMAGES[directory]


def test_example_cluster_declares_a_digest_for_every_image_and_nothing_else():
    example = yaml.safe_load(EXAMPLE_CLUSTER.read_text())
    digests = example["globals"]["modulesImages"]["digests"][MODULE_NAME]
    assert set(digests) == {camel_case(directory) for directory in SPEC_IMAGES}
    for name, digest in digests.items():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name}: {digest!r} is not a sha256 digest"


# --- templates and final stages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_template_renders_to_werf_image_documents(directory):
    docs = documents(directory)
    names = [doc["image"] for doc in docs]
    assert len(names) == len(set(names)), f"{directory}: duplicate image names {names}"
    for doc in docs:
        assert doc["image"].startswith(f"{MODULE_NAME}/{directory}"), (
            f"{directory}: {doc['image']} is not namespaced"
        )
        if doc["image"] != f"{MODULE_NAME}/{directory}":
            assert doc.get("final") is False, (
                f"{directory}: intermediate image {doc['image']} must be final: false"
            )


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_final_image_is_distroless_and_runs_as_64535(directory):
    final = final_image(directory)
    assert final.get("final", True) is True
    assert final.get("fromImage") in FINAL_BASES, (
        f"{directory}: final stage must start from a distroless base"
    )
    assert "shell" not in final, (
        f"{directory}: the final stage must not run commands (nothing to run them with)"
    )
    assert final["imageSpec"]["config"]["user"] == RUNTIME_USER


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_final_image_program_is_put_there_by_an_import(directory):
    """The entrypoint (or the command when there is none) must be a file that an import places in the image."""
    final = final_image(directory)
    config = final["imageSpec"]["config"]
    program = (config.get("entrypoint") or config.get("cmd"))[0]
    imports = final.get("import") or []
    direct = {item["to"] for item in imports}
    relocated = [item for item in imports if item.get("add") == "/relocate" and item.get("to") == "/"]
    from_relocate = any(
        f"/relocate{program}" in shell_text(stage(directory, item["image"])) for item in relocated
    )
    assert program in direct or from_relocate, f"{directory}: nothing imports {program}"


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_no_latest_tags(directory):
    text = build_file(directory).read_text()
    assert not re.search(r"\blatest\b", text, re.I), f"{directory}: floating 'latest' reference"


@pytest.mark.parametrize("directory", sorted(SPEC_IMAGES))
def test_sources_are_fetched_at_pinned_refs(directory):
    for line in shell_text_of_all(directory).splitlines():
        if "git clone" in line:
            assert re.search(r"--branch \S*\d+\.\d+", line), (
                f"{directory}: clone without a pinned tag: {line}"
            )
        if re.search(r"\b(curl|wget)\b", line) and "http" in line:
            assert "127.0.0.1" in line or re.search(r"\d+\.\d+\.\d+", line), (
                f"{directory}: unpinned download: {line}"
            )


# --- pins ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "directory,variable,oss_name",
    [(d, var, name) for d, table in sorted(OSS_PINS.items()) for var, name in table.items()],
)
def test_pinned_version_equals_oss_yaml(directory, variable, oss_name):
    pins = pins_of(build_file(directory).read_text())
    assert variable in pins, f"{directory}: ${variable} is not pinned"
    versions = oss_versions()
    assert oss_name in versions, f"oss.yaml has no entry named {oss_name!r}"
    assert _semver(pins[variable]) == _semver(versions[oss_name]), (
        f"{directory}: ${variable}={pins[variable]} but oss.yaml lists {oss_name} {versions[oss_name]}"
    )


@pytest.mark.parametrize("directory", sorted(OSS_PINS))
def test_pinned_version_is_used_by_the_build(directory):
    text = build_file(directory).read_text()
    for variable in OSS_PINS[directory]:
        uses = re.findall(r"\{\{-?\s*\$" + variable + r"\s*-?\}\}", text)
        assert uses, f"{directory}: ${variable} is pinned but never used"


@pytest.mark.parametrize(
    "directory,variable,path",
    [(d, var, path) for d, table in sorted(GO_PATHS.items()) for var, path in table.items()],
)
def test_go_module_paths(directory, variable, path):
    assert pins_of(build_file(directory).read_text()).get(variable) == path


@pytest.mark.parametrize("directory", sorted(GO_PATHS))
def test_go_builds_are_static_trimmed_and_stamped(directory):
    for doc in documents(directory):
        script = shell_text(doc)
        builds = [line for line in script.splitlines() if re.search(r"\bgo (build|install)\b", line)]
        if not builds:
            continue
        assert "CGO_ENABLED=0" in script, f"{directory}: {doc['image']} builds Go without CGO_ENABLED=0"
        for line in builds:
            assert "-trimpath" in line, f"{directory}: go build without -trimpath"
            assert re.search(r"-X \S+/version\.\w+=v\d+\.\d+\.\d+", line), f"{directory}: no version ldflags"
        # The module in the source tree is checked against the pin before anything is built.
        assert 'test "$(go list -m)" = ' in script


def test_distribution_version_stamp_and_source_tag_agree():
    rendered = render("registry-distribution")
    version = pins_of(build_file("registry-distribution").read_text())["distributionVersion"]
    module = GO_PATHS["registry-distribution"]["distributionModule"]
    assert f"--branch {version} " in rendered
    assert f"-X {module}/version.version={version}" in rendered


def test_regsync_version_stamp_and_source_tag_agree():
    rendered = render("registry-sync")
    version = pins_of(build_file("registry-sync").read_text())["regclientVersion"]
    assert f"--branch {version} " in rendered
    assert f"-X github.com/regclient/regclient/internal/version.vcsTag={version}" in rendered
    assert "-o /regsync github.com/regclient/regclient/cmd/regsync" in rendered


# --- image-specific content ---------------------------------------------------------------------------------------


def test_distribution_ships_the_ca_bundle_where_go_looks_for_it():
    targets = {item["to"] for item in final_image("registry-distribution")["import"]}
    assert "/etc/ssl/certs/ca-certificates.crt" in targets
    assert "/usr/bin/registry" in targets


def test_gc_reuses_the_distribution_binary_and_has_sh_and_sleep():
    imports = final_image("registry-gc")["import"]
    artifact = f"{MODULE_NAME}/registry-distribution-artifact"
    assert any(item["image"] == artifact and item["add"] == "/registry" for item in imports)
    # The imported artifact exists and produces /registry.
    assert "-o /registry " in shell_text(stage("registry-distribution", artifact))
    busybox = shell_text(stage("registry-gc", f"{MODULE_NAME}/registry-gc-busybox-artifact"))
    assert "CONFIG_STATIC" in busybox or "STATIC " in busybox
    for applet in ("sh", "sleep"):
        assert f"ln -s busybox /relocate/bin/{applet}" in busybox
    assert "sha256sum -c" in busybox


def test_nginx_configure_flags_come_from_the_shared_file():
    """images/registry-nginx/configure-flags is the one list the image and `make tools` (tools/build-nginx.sh) use."""
    flags = (IMAGES / "registry-nginx" / "configure-flags").read_text().splitlines()
    assert flags and all(re.fullmatch(r"--[a-z][a-z0-9_-]*(=/[A-Za-z0-9_./-]+)?", flag) for flag in flags), (
        "configure-flags: one `--flag` or `--flag=/path` per line, nothing else"
    )
    assert len(set(flags)) == len(flags)
    script = shell_text(stage("registry-nginx", f"{MODULE_NAME}/registry-nginx-artifact"))
    configure = next(line for line in script.splitlines() if "auto/configure" in line)
    assert configure.startswith(f"./auto/configure {' '.join(flags)} --with-pcre=")
    # what follows the shared list is where the sources are and how to link, not which modules exist
    own = configure.removeprefix(f"./auto/configure {' '.join(flags)} ").split(" --")
    assert [part.lstrip("-").split("=")[0] for part in own] == ["with-pcre", "with-openssl", "with-cc-opt", "with-ld-opt"]


def test_nginx_has_ssl_stream_and_links_libxcrypt():
    script = shell_text(stage("registry-nginx", f"{MODULE_NAME}/registry-nginx-artifact"))
    configure = next(line for line in script.splitlines() if "auto/configure" in line)
    for flag in ("--with-http_ssl_module", "--with-stream ", "--with-stream_ssl_module"):
        assert flag in configure + " ", f"nginx configure lacks {flag.strip()}"
    assert "-L/opt/xcrypt/lib" in configure and "-I/opt/xcrypt/include" in configure
    assert "--disable-shared --enable-static" in script  # libxcrypt is linked in, not loaded
    assert "crypt_rn" in script  # the binary is checked for libxcrypt's crypt
    # The build proves that both bcrypt spellings authenticate and a wrong password does not.
    assert "$2b$" in script and "$2y$" in script and "= 401" in script
