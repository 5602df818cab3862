#!/usr/bin/env bash
# Builds kube-apiserver, etcd (and, with --kubectl, kubectl) from the Go module
# proxy into bin/, for envtest. Nothing is downloaded from anywhere else, so it
# works where setup-envtest cannot. A second run with the binaries present is a
# no-op.
#
#   hack/build-control-plane.sh [--kubectl]
#
# kube-apiserver comes from k8s.io/kubernetes, whose go.mod points every
# k8s.io/<staging> module at ./staging/src/...; a throwaway module replaces each
# of them with its published v0.X.Y release instead.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${ROOT}/bin"
WANT_KUBECTL=0
[[ "${1:-}" == "--kubectl" ]] && WANT_KUBECTL=1

mkdir -p "${BIN}"
stamp="${BIN}/.control-plane-${KUBE_VERSION}-${ETCD_VERSION}"
need_apiserver=1; need_etcd=1; need_kubectl=${WANT_KUBECTL}
if [[ -f "${stamp}" ]]; then
  [[ -x "${BIN}/kube-apiserver" ]] && need_apiserver=0
  [[ -x "${BIN}/etcd" ]] && need_etcd=0
fi
[[ -x "${BIN}/kubectl" && -f "${stamp}" ]] && need_kubectl=0
if (( need_apiserver + need_etcd + need_kubectl == 0 )); then
  exit 0
fi

log() { printf '[control-plane] %s\n' "$*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=mod"
export CGO_ENABLED=0
minor="${KUBE_VERSION#v1.}"   # 36.3
staging_version="v0.${minor}"

if (( need_apiserver + need_kubectl > 0 )); then
  log "kube-apiserver ${KUBE_VERSION}: resolving k8s.io/kubernetes and its staging modules at ${staging_version} (first run: ~1 min)"
  mkdir -p "${work}/kube"
  cd "${work}/kube"
  go mod init local/control-plane >/dev/null 2>&1
  gomod="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  # Every module kubernetes replaces with ./staging/src/... gets its release.
  for mod in $(sed -n '/^replace (/,/^)/p' "${gomod}" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}'); do
    case "${mod}" in k8s.io/sample-*) continue ;; esac  # examples, not built, not all published
    go mod edit -replace "${mod}=${mod}@${staging_version}"
  done
  go mod edit -require "k8s.io/kubernetes@${KUBE_VERSION}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor%%.*}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    printf '\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n'
    (( need_kubectl )) && printf '\t_ "k8s.io/kubernetes/cmd/kubectl"\n'
    printf ')\n'
  } > tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  if (( need_apiserver )); then
    log "kube-apiserver ${KUBE_VERSION}: compiling (first run: ~5 min on 2 cores)"
    go build -trimpath -ldflags "${ldflags}" -o "${BIN}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  fi
  if (( need_kubectl )); then
    log "kubectl ${KUBE_VERSION}: compiling"
    go build -trimpath -ldflags "${ldflags}" -o "${BIN}/kubectl" k8s.io/kubernetes/cmd/kubectl
  fi
fi

if (( need_etcd )); then
  log "etcd ${ETCD_VERSION}: resolving and compiling go.etcd.io/etcd/server/v3 (first run: ~1 min)"
  mkdir -p "${work}/etcd"
  cd "${work}/etcd"
  go mod init local/etcd >/dev/null 2>&1
  go mod edit -require "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
GO
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -trimpath -ldflags "-s -w" -o "${BIN}/etcd" go.etcd.io/etcd/server/v3
fi

touch "${stamp}"
log "ready: $("${BIN}/kube-apiserver" --version 2>/dev/null || echo kube-apiserver), $("${BIN}/etcd" --version 2>/dev/null | head -1)"
