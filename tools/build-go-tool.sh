#!/usr/bin/env bash
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

# Build a Go tool once per version into a cache outside the checkout and link it into .tools/bin.
# Usage: build-go-tool.sh required|optional <name> <go package> <version> <cache dir> <bin dir> [build tags]
# The optional seventh argument is passed to `go install -tags` (space-separated, as Go takes it).
set -euo pipefail

need=$1 name=$2 package=$3 version=$4 cache=$5 bindir=$6 tags=${7:-}
target="$cache/$name-$version"
mkdir -p "$bindir"

if [ ! -x "$target/$name" ]; then
  echo "building $name $version from $package (cached in $target)"
  mkdir -p "$target.tmp"
  if GOBIN="$target.tmp" go install ${tags:+-tags "$tags"} "$package@$version" >"$target.tmp.log" 2>&1; then
    built=$(find "$target.tmp" -maxdepth 1 -type f | head -n 1)
    mv "$built" "$target.tmp/$name" 2>/dev/null || true
    rm -rf "$target" && mv "$target.tmp" "$target"
  else
    rm -rf "$target.tmp"
    if [ "$need" = optional ]; then
      echo "warning: $name $version could not be built ($(tail -n 1 "$target.tmp.log")); continuing without it"
      exit 0
    fi
    cat "$target.tmp.log" >&2
    exit 1
  fi
fi
ln -sfn "$target/$name" "$bindir/$name"
