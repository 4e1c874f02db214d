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

# Build the test nginx with the registry image's own configure flags, once per version and flag set, into a
# cache outside the checkout, and link it into .tools/bin. The source is the pristine upstream tarball of
# Debian's source package (nginx_<version>.orig.tar.gz); Debian's patches and Debian's binary are not used.
# Usage: build-nginx.sh <nginx version> <configure-flags file> <cache dir> <bin dir>
set -euo pipefail

version=$1 flags_file=$2 cache=$3 bindir=$4
mapfile -t flags < "$flags_file"
for flag in "${flags[@]}"; do
  # the same shape tests/unit/test_images.py enforces; nothing else may reach configure
  if ! [[ $flag =~ ^--[a-z][a-z0-9_-]*(=/[A-Za-z0-9_./-]+)?$ ]]; then
    echo "build-nginx: $flags_file: not a configure flag: '$flag'" >&2
    exit 1
  fi
done
flags_hash=$(sha256sum "$flags_file" | cut -c1-12)
target="$cache/nginx-$version-$flags_hash"
mkdir -p "$bindir"

ensure_deb_src() {
  # grep -c reads to the end: with pipefail, grep -q could make apt-cache die of SIGPIPE
  if apt-cache showsrc nginx 2>/dev/null | grep -c '^Package: nginx$' >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "build-nginx: apt has no deb-src entry for nginx; add one for your Debian suite (or run make as root)" >&2
    exit 1
  fi
  local suite
  suite=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
  [ -n "$suite" ] || { echo "build-nginx: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }
  echo "build-nginx: adding a deb-src entry for Debian $suite (/etc/apt/sources.list.d/d8registry-deb-src.sources)"
  cat > /etc/apt/sources.list.d/d8registry-deb-src.sources <<EOF
# Added by the d8 registry module's Makefile (tools/build-nginx.sh): the nginx source package for the test build.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
}

# one build at a time per cache: worktrees share it
mkdir -p "$cache"
exec 9>"$cache/nginx.lock"
flock 9

if [ ! -x "$target/nginx" ]; then
  for tool in cc make; do
    command -v "$tool" >/dev/null || { echo "build-nginx: $tool is missing: run \`make debs\` (build-essential)" >&2; exit 1; }
  done
  echo "building nginx $version with images/registry-nginx/configure-flags (cached in $target)"
  started=$(date +%s)
  ensure_deb_src
  work="$target.tmp"
  rm -rf "$work" && mkdir -p "$work/src"
  # apt verifies the tarball against the signed Sources index; the orig tarball is upstream's release as is
  (cd "$work" && apt-get source --download-only -qq nginx >"$work/apt.log" 2>&1) || { cat "$work/apt.log" >&2; exit 1; }
  orig="$work/nginx_$version.orig.tar.gz"
  if [ ! -f "$orig" ]; then
    echo "build-nginx: Debian's source package does not carry nginx $version:" "$(cd "$work" && ls ./*.orig.tar.*)" >&2
    exit 1
  fi
  tar -xzf "$orig" -C "$work/src" --strip-components=1
  (
    cd "$work/src"
    ./configure "${flags[@]}" >"$work/configure.log" 2>&1 || { tail -n 30 "$work/configure.log" >&2; exit 1; }
    make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 30 "$work/make.log" >&2; exit 1; }
  )
  built="$work/src/objs/nginx"
  # the binary must report the flags it was asked for, in order (a stale or foreign build would not)
  if [ "$("$built" -V 2>&1 | sed -n 's/^configure arguments: //p')" != "${flags[*]}" ]; then
    echo "build-nginx: the built nginx does not report the configure flags of $flags_file" >&2
    exit 1
  fi
  mkdir -p "$work/out"
  cp "$built" "$work/out/nginx"
  cp "$flags_file" "$work/out/configure-flags"
  rm -rf "$target" && mv "$work/out" "$target" && rm -rf "$work"
  echo "built nginx $version in $(( $(date +%s) - started ))s"
fi
ln -sfn "$target/nginx" "$bindir/nginx"
