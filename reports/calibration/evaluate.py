#!/usr/bin/env python3
"""Scores the change points of a calibration (see calibrate.sh) against what each run was.

After every publish, a change point is *true* when it falls on a run where the profile
changed (the first bad run, or the first good run after the bad ones), within +-TOLERANCE
runs, and a *false alarm* otherwise. The detection delay of a true change is how many runs
were published after the run where it began before a publish reported it.
"""
import csv
import json
import os
import sys

TOLERANCE = 1

out = sys.argv[1]
truth = list(csv.DictReader(open(os.path.join(out, "truth.csv"))))
index_of = {row["started_at"]: int(row["index"]) for row in truth}
profiles = [row["profile"] for row in truth]
boundaries = [i for i in range(1, len(profiles)) if profiles[i] != profiles[i - 1]]

snapshots = sorted(os.listdir(os.path.join(out, "snapshots")))
first_seen = {}  # (series, boundary) -> publish index
false_alarms = {}  # (series, run index) -> first publish index
for name in snapshots:
    published = int(name.split(".")[0])
    data = json.load(open(os.path.join(out, "snapshots", name)))
    for series in data["series"]:
        key = f'{series["suite"]} / {series["slo"]}'
        for change in series["changes"]:
            at = index_of[change["started_at"]]
            near = [b for b in boundaries if abs(at - b) <= TOLERANCE and b <= published]
            if near:
                first_seen.setdefault((key, near[0]), (published, change))
            else:
                false_alarms.setdefault((key, at), (published, change))

final = json.load(open(os.path.join(out, "snapshots", snapshots[-1])))
series_count = len(final["series"])
print(f"runs: {len(truth)} ({', '.join(f'{p} x{profiles.count(p)}' for p in sorted(set(profiles)))}); "
      f"boundaries at runs {boundaries}; {series_count} SLO trend lines; "
      f"{len(snapshots)} publishes")
print(f"settings: {final['method']}; p <= {final['significance']}, "
      f"{final['permutations']} permutations, min segment {final['min_segment']}")
print("\ndetections (series, boundary run, detected at publish, delay in runs, size, p):")
delays = []
for (key, boundary), (published, change) in sorted(first_seen.items()):
    delay = published - boundary
    delays.append(delay)
    print(f"  {key}: run {boundary} ({profiles[boundary]}) seen after run {published}: "
          f"delay {delay}, {change['before_mean']:.4g} -> {change['after_mean']:.4g}, "
          f"p={change['p_value']:.3f}")
print(f"\nfalse alarms (change points away from a boundary, ever reported): {len(false_alarms)}")
for (key, at), (published, change) in sorted(false_alarms.items()):
    print(f"  {key}: run {at} reported after run {published}, "
          f"{change['before_mean']:.4g} -> {change['after_mean']:.4g}, p={change['p_value']:.3f}")
final_false = sum(
    1
    for series in final["series"]
    for change in series["changes"]
    if not any(abs(index_of[change["started_at"]] - b) <= TOLERANCE for b in boundaries)
)
summary = {
    "runs": len(truth),
    "boundaries": boundaries,
    "series": series_count,
    "detections": len(first_seen),
    "delays": delays,
    "false_alarms_ever": len(false_alarms),
    "false_alarms_final": final_false,
    "series_false_alarm_rate": len({k for k, _ in false_alarms}) / max(series_count, 1),
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print("\nsummary:", json.dumps(summary))
