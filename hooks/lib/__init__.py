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
"""Pure logic of the registry module hooks: no I/O apart from the clock and, later, the checker client."""

# Every hook imports this package before anything outside the standard library, so this is where a hook started
# from the module bundle finds its dependencies: <module>/lib/python/<X.Y>/ (built by tools/build_bundle.py, one
# directory per supported Python), put ahead of whatever the interpreter has. A checkout has no such directory
# and runs on the project's venv. See docs/INSTALL.md, "The hooks' runtime".
import os as _os
import sys as _sys

_RUNTIME = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))), "lib", "python")
if _os.path.isdir(_RUNTIME):
    _version = f"{_sys.version_info[0]}.{_sys.version_info[1]}"
    _site = _os.path.join(_RUNTIME, _version)
    if not _os.path.isdir(_site):
        _have = ", ".join(sorted(n for n in _os.listdir(_RUNTIME) if not n.startswith("."))) or "none"
        raise ImportError(f"the registry module bundle has no hook runtime for Python {_version} "
                          f"in {_RUNTIME} (it has: {_have})")
    if _site not in _sys.path:
        # right after the hooks directory (sys.path[0]) so that 'lib' stays this package, and ahead of PYTHONPATH and
        # site-packages; none of the runtime's names is a standard module's (tests/bundle checks it)
        _sys.path.insert(1, _site)
