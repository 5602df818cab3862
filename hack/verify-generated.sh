#!/usr/bin/env bash
# Fails when the committed generated files (deepcopy, CRDs, RBAC, the chart's
# CRDs and RBAC rules, config/default's CRDs, the chart's alerts and dashboard) differ from what `make generate
# manifests` produces. It regenerates them in place, so after a failure the fix
# is to review and commit them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

paths=(api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml charts/ejbca-issuer/templates/crds
  charts/ejbca-issuer/files/rbac-rules.yaml config/default/crds
  charts/ejbca-issuer/files/alerts.yaml charts/ejbca-issuer/files/dashboard.json docs/dashboard.svg)
digest() {
  local p
  for p in "${paths[@]}"; do
    [[ -e "${p}" ]] && find "${p}" -type f -print0 | sort -z | xargs -0 sha256sum
  done
  true
}
before="$(digest)"
make --no-print-directory generate manifests >/dev/null
after="$(digest)"
if [[ "${before}" != "${after}" ]]; then
  echo "generated files were stale and have been regenerated; review and commit:" >&2
  diff <(echo "${before}") <(echo "${after}") >&2 || true
  exit 1
fi
echo "generated files are up to date"
