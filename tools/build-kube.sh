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

# Build kube-apiserver and kubectl of one Kubernetes release once into a cache outside the checkout
# and link them into .tools/bin.
# k8s.io/kubernetes replaces its staging modules with local paths, so `go install pkg@version` cannot
# build it; a throwaway wrapper module requires it and pins every staging module to the matching v0.x.
# Usage: build-kube.sh <version, e.g. v1.37.2> <cache dir> <bin dir>
set -euo pipefail

version=$1 cache=$2 bindir=$3
[[ $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "build-kube.sh: bad version '$version'" >&2; exit 2; }
minor=${BASH_REMATCH[1]}
staging="v0.$minor.${BASH_REMATCH[2]}"
target="$cache/kube-$version"
mkdir -p "$bindir"

if [ ! -x "$target/kube-apiserver" ] || [ ! -x "$target/kubectl" ]; then
  echo "building kube-apiserver and kubectl $version (cached in $target; takes minutes)"
  rm -rf "$target.tmp"
  mkdir -p "$target.tmp/src"
  log="$target.tmp.log"
  (
    set -euo pipefail
    cd "$target.tmp/src"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    modfile=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    [ -f "$modfile" ] || { echo "no go.mod for k8s.io/kubernetes@$version"; exit 1; }
    goversion=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$modfile")
    # the staging modules: the local-path replaces of the kubernetes go.mod, minus the two samples
    # that are not published to the module proxy
    mapfile -t mods < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$modfile" |
      grep -vx -e k8s.io/sample-cli-plugin -e k8s.io/sample-controller)
    [ "${#mods[@]}" -gt 10 ] || { echo "staging module list looks wrong: ${mods[*]}"; exit 1; }
    {
      echo "module d8registry.local/kubebuild"
      echo
      echo "go $goversion"
      echo
      echo "require k8s.io/kubernetes $version"
      echo
      for m in "${mods[@]}"; do echo "replace $m => $m $staging"; done
    } >go.mod
    printf '//go:build tools\n\npackage kubebuild\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >tools.go
    go mod tidy
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    done
    mkdir -p ../bin
    go build -trimpath -ldflags "$ldflags" -o ../bin/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  ) >"$log" 2>&1 || { tail -n 40 "$log" >&2; rm -rf "$target.tmp"; exit 1; }
  rm -rf "$target" && mkdir -p "$target"
  mv "$target.tmp/bin/kube-apiserver" "$target.tmp/bin/kubectl" "$target/"
  rm -rf "$target.tmp"
fi
ln -sfn "$target/kube-apiserver" "$bindir/kube-apiserver"
ln -sfn "$target/kubectl" "$bindir/kubectl"
