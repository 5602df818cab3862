#!/usr/bin/env bash
# make demo: builds what the demo needs and runs it. The control plane
# (kube-apiserver, etcd) and the demo program compile at the same time, so a
# cold run takes about as long as the control-plane build alone.
#
#   hack/run-demo.sh [--once]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${PWD}/bin"
mkdir -p "${BIN}"
say() { printf '[make demo] %s\n' "$*"; }

say "compiling the demo program (cert-manager's controllers, the EJBCA simulator, the manager) in the background"
log="${BIN}/.demo-build.log"
( CGO_ENABLED=0 go build -trimpath -o "${BIN}/demo" ./hack/demo >"${log}" 2>&1; echo $? >"${log}.rc" ) &
build_pid=$!
rm -f "${log}.rc"

if ! hack/build-control-plane.sh; then
  say "building the control plane failed"
  kill "${build_pid}" 2>/dev/null
  exit 1
fi

start=$(date +%s)
while kill -0 "${build_pid}" 2>/dev/null; do
  sleep 5
  kill -0 "${build_pid}" 2>/dev/null && say "still compiling the demo program ($(( $(date +%s) - start ))s)..."
done
wait "${build_pid}"
if [[ "$(cat "${log}.rc" 2>/dev/null)" != "0" ]]; then
  say "compiling the demo failed:"
  cat "${log}"
  exit 1
fi
say "starting the demo"
exec "${BIN}/demo" --dir .demo "$@"
