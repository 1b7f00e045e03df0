#!/usr/bin/env python3
"""Reads a run directory's events.out.tfevents.* with TensorBoard's own reader and checks them against the
run's files: the val_loss scalars equal metrics.jsonl's (as float32), and each watched matrix's histogram
(tag <matrix>/levels) has, at every recorded step, the count of levels, the minimum and the maximum of
that step's row of spectra/<matrix>.npy. A killed run may have one metrics line or one histogram more
than the other file (the kill fell between the two writes). usage: check_tensorboard.py RUN_DIR"""
import glob, json, os, sys
import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea

run = sys.argv[1]
acc = ea.EventAccumulator(run, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
acc.Reload()
tags = acc.Tags()
problems = []

metrics = {}
for line in open(os.path.join(run, "metrics.jsonl")):
    try:
        m = json.loads(line)
    except ValueError:
        continue   # a torn last line
    if "val_loss" in m:
        metrics[m["step"]] = np.float32(m["val_loss"])
events = {e.step: np.float32(e.value) for e in acc.Scalars("val_loss")} if "val_loss" in tags["scalars"] else {}
for step, v in events.items():
    if metrics.get(step) != v:
        problems.append(f"val_loss at step {step}: events {v}, metrics.jsonl {metrics.get(step)}")
missing = sorted(set(metrics) - set(events))
if missing and (len(missing) > 1 or missing[0] != max(metrics)):
    problems.append(f"val_loss steps missing from the events: {missing}")

config = json.load(open(os.path.join(run, "config.json")))
union = np.load(os.path.join(run, "spectra", "steps.npy"))
histograms = 0
for w in config.get("watch", []):
    name = w["name"]
    path = os.path.join(run, "spectra", name + ".npy")
    if not os.path.exists(path):
        continue
    levels = np.load(path)
    own = os.path.join(run, "spectra", name + ".steps.npy")
    steps = np.load(own) if os.path.exists(own) else union
    n = min(len(levels), len(steps))
    tag = name + "/levels"
    got = {e.step: e.histogram_value for e in acc.Histograms(tag)} if tag in tags["histograms"] else {}
    histograms += len(got)
    for i in range(n):
        h, row = got.get(int(steps[i])), levels[i]
        if h is None:
            problems.append(f"{tag}: no histogram at step {steps[i]}")
        elif h.num != len(row) or h.min != row.min() or h.max != row.max() or sum(h.bucket) != len(row):
            problems.append(f"{tag} at step {steps[i]}: num {h.num} min {h.min} max {h.max}, expected {len(row)} {row.min()} {row.max()}")
    extra = sorted(set(got) - set(int(s) for s in steps[:n]))
    if len(extra) > 1:
        problems.append(f"{tag}: histograms at steps without a spectra row: {extra}")
print("\n".join(problems) if problems else f"OK val_loss={len(events)} histograms={histograms} files={len(glob.glob(run + '/events.out.tfevents.*'))}")
sys.exit(1 if problems else 0)
