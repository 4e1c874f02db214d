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
"""Stand-in for the node tools the step bodies call (kubectl, crictl, systemctl, chown, sleep, containerd).

One script, installed under each tool's name. Every call is appended to calls.jsonl in the node's work
dir; kubectl answers from kube.json (a list of objects) and applies label/annotate to it; fail.json
makes chosen calls fail ("always" or a number of times).
"""

import json
import os
import sys
from pathlib import Path

WORK = Path(os.environ["D8REG_TEST_WORK"])


def record(tool, argv):
    with open(WORK / "calls.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"tool": tool, "argv": argv}) + "\n")


def should_fail(key):
    path = WORK / "fail.json"
    if not path.exists():
        return False
    fail = json.loads(path.read_text())
    left = fail.get(key)
    if left is None:
        return False
    if left == "always":
        return True
    if left > 0:
        fail[key] = left - 1
        path.write_text(json.dumps(fail))
        return True
    return False


def kubectl(argv):
    args, flags, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--kubeconfig", "-n", "--namespace", "-o"):
            flags[arg] = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--"):
            flags[arg] = True
        else:
            args.append(arg)
        i += 1
    verb = args[0] if args else ""
    if should_fail(f"kubectl {verb}"):
        print("Error from server (InternalError): an error on the server (\"\") has prevented the request", file=sys.stderr)
        return 1
    store_path = WORK / "kube.json"
    objects = json.loads(store_path.read_text()) if store_path.exists() else []
    namespace = flags.get("-n") or flags.get("--namespace") or ""
    if verb == "get":
        kind, name = args[1], args[2]
        for obj in objects:
            meta = obj["metadata"]
            if obj["kind"].lower() == kind and meta["name"] == name and meta.get("namespace", "") == namespace:
                print(json.dumps(obj, indent=4))
                return 0
        if "--ignore-not-found" in flags:
            return 0
        print(f'Error from server (NotFound): {kind}s "{name}" not found', file=sys.stderr)
        return 1
    if verb in ("label", "annotate"):
        kind, name, pairs = args[1], args[2], args[3:]
        for obj in objects:
            if obj["kind"].lower() == kind and obj["metadata"]["name"] == name:
                field = "labels" if verb == "label" else "annotations"
                target = obj["metadata"].setdefault(field, {})
                for pair in pairs:
                    key, _, value = pair.partition("=")
                    target[key] = value
                store_path.write_text(json.dumps(objects))
                print(f"{kind}/{name} {verb}d")
                return 0
        print(f'Error from server (NotFound): {kind}s "{name}" not found', file=sys.stderr)
        return 1
    print(f"stub kubectl: unsupported call {argv}", file=sys.stderr)
    return 2


def containerd(argv):
    if argv == ["--version"]:
        print("containerd github.com/containerd/containerd 1.7.99 stub")
        return 0
    if len(argv) == 4 and argv[0] == "--config" and argv[2:] == ["config", "dump"]:
        if should_fail("containerd dump"):
            print("containerd: failed to load TOML", file=sys.stderr)
            return 1
        # the stub's "dump" is the file itself: enough for the step's config_path check
        sys.stdout.write(Path(argv[1]).read_text())
        return 0
    return 2


def main():
    tool = Path(sys.argv[0]).name
    argv = sys.argv[1:]
    record(tool, argv)
    if tool == "kubectl":
        return kubectl(argv)
    if tool == "containerd":
        return containerd(argv)
    key = f"{tool} {argv[0]}" if argv else tool
    if should_fail(key) or should_fail(tool):
        print(f"stub {tool}: failing as asked", file=sys.stderr)
        return 1
    return 0


sys.exit(main())
