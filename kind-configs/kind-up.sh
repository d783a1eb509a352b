#!/usr/bin/env bash
# `make kind-up`: a management cluster and N downstream clusters for the kind provider,
# made from this directory's configs, for working with them by hand (the harness's kind
# provider makes its own per run, with the same configs).
#
#   kind-configs/kind-up.sh [N]     N downstream clusters (default: $DOWNSTREAM or 2)
#
# Clusters: fleetbench-mgmt, fleetbench-downstream-1..N. Kubeconfigs: out/kind/<name>.kubeconfig
# (your ~/.kube/config is not touched). Running it again creates only what is missing.
# Stops at once, saying what to do, when kind, Docker or the node image is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIGS="$ROOT/kind-configs"
OUT="${KIND_OUT:-$ROOT/out/kind}"
COUNT="${1:-${DOWNSTREAM:-2}}"
NODE_IMAGE="${FLEETBENCH_KIND_NODE_IMAGE:-kindest/node:v1.33.1}"
KIND_RELEASE=v0.29.0

die() { echo "kind-up: $*" >&2; exit 1; }
[[ "$COUNT" =~ ^[0-9]+$ ]] || die "the number of downstream clusters must be a number, got $COUNT"

missing=()
command -v kind >/dev/null 2>&1 \
  || missing+=("kind is not on PATH: install kind $KIND_RELEASE or newer, e.g. \`go install sigs.k8s.io/kind@$KIND_RELEASE\` or the release binary from https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
if ! command -v docker >/dev/null 2>&1 || ! docker version >/dev/null 2>&1; then
  missing+=("no usable Docker engine: kind runs its nodes as Docker containers (install Docker, start it, or set DOCKER_HOST)")
elif ! docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
  missing+=("the kind node image $NODE_IMAGE is not on this machine and cannot be pulled from here: run \`docker pull $NODE_IMAGE\` where a registry is reachable and bring it over with \`docker save $NODE_IMAGE | docker load\`, or set FLEETBENCH_KIND_NODE_IMAGE to a node image you have")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "kind-up: cannot create the kind clusters:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi

mkdir -p "$OUT"
existing="$(kind get clusters 2>/dev/null || true)"
create() { # name config
  if grep -qx "$1" <<<"$existing"; then
    echo "kind-up: $1 exists"
  else
    kind create cluster --name "$1" --config "$2" --image "$NODE_IMAGE" \
      --kubeconfig "$OUT/$1.kubeconfig" --wait 120s
  fi
  kind get kubeconfig --name "$1" > "$OUT/$1.kubeconfig"
  kind get kubeconfig --name "$1" --internal > "$OUT/$1.internal.kubeconfig"
}
create fleetbench-mgmt "$CONFIGS/management.yaml"
for i in $(seq 1 "$COUNT"); do
  create "fleetbench-downstream-$i" "$CONFIGS/downstream.yaml"
done
echo "kind-up: kubeconfigs in $OUT (*.internal.kubeconfig: as seen from kind's Docker network)"
