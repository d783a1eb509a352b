#!/usr/bin/env bash
# `make kind-down`: deletes the clusters `make kind-up` created (fleetbench-mgmt and every
# fleetbench-downstream-N) and their kubeconfigs in out/kind. Clusters the harness's kind
# provider creates per run (fleetbench-<run>-...) are deleted by the harness itself; pass
# --all to delete those too (after a run was killed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${KIND_OUT:-$ROOT/out/kind}"
pattern='^fleetbench-(mgmt|downstream-[0-9]+)$'
[ "${1:-}" = "--all" ] && pattern='^fleetbench-'

command -v kind >/dev/null 2>&1 || { echo "kind-down: kind is not on PATH; nothing to delete" >&2; exit 0; }
for name in $(kind get clusters 2>/dev/null | grep -E "$pattern" || true); do
  kind delete cluster --name "$name"
  rm -f "$OUT/$name.kubeconfig" "$OUT/$name.internal.kubeconfig"
done
echo "kind-down: done"
