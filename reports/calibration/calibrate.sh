#!/usr/bin/env bash
# Calibrates `fleetbench publish`'s change-point detection with runs that are known good
# (profile current) and known bad (profile fleet-v0.10, the legacy algorithms), published one
# at a time as a nightly job would, keeping each publish's change-points.json.
#
# The known-bad runs stand in for a regression of the current controller, so they must land
# in the current trend lines: their results.json says `"profile": "current"` before publishing
# (truth.csv keeps what each run really was). Nothing else in them is changed.
#
# Usage: reports/calibration/calibrate.sh [OUT_DIR]   (from the workspace root, after
# `cargo build -p fleetbench -p fleet-controller`)
set -euo pipefail
out=${1:-out/calibration}
here=$(dirname "$0")
bin=${FLEETBENCH:-target/debug/fleetbench}
suites=(suites/smoke/label-propagation-smoke.yaml suites/smoke/batch-commit-webhook-smoke.yaml)
# 12 good, 5 bad, 7 good: a regression that arrives and is fixed again.
plan=(current current current current current current current current current current current current
      fleet-v0.10 fleet-v0.10 fleet-v0.10 fleet-v0.10 fleet-v0.10
      current current current current current current current)
rm -rf "$out" && mkdir -p "$out/runs" "$out/snapshots"
echo "index,profile,started_at,exit" > "$out/truth.csv"
for i in "${!plan[@]}"; do
  profile=${plan[$i]}
  run="$out/runs/$(printf %02d "$i")"
  set +e
  "$bin" run "${suites[@]}" --profile "$profile" --out "$run" -q
  code=$?
  set -e
  started=$(jq -r .started_at "$run/results.json")
  echo "$i,$profile,$started,$code" >> "$out/truth.csv"
  if [ "$profile" != current ]; then
    jq '.suites[].profile = "current"' "$run/results.json" > "$run/results.relabelled"
    mv "$run/results.relabelled" "$run/results.json"
  fi
  "$bin" publish "$run" --reports "$out/history" -q
  cp "$out/history/change-points.json" "$out/snapshots/$(printf %02d "$i").json"
done
python3 "$here/evaluate.py" "$out"
