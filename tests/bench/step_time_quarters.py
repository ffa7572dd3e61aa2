#!/usr/bin/env python3
"""Median seconds per training step in each quarter of a run, from the
train_s column of its /train rows, to see whether a run's step time drifts
as training proceeds (the step_time.sh benchmark only sees steps 7-16):
    tests/bench/step_time_quarters.py RUN.h5 [RUN.h5 ...]
"""
import sys

import h5py
import numpy as np


def quarters(path):
    train = h5py.File(path, "r")["train"][:]
    per_step = np.diff(train["train_s"]) / np.maximum(np.diff(train["step"]), 1)
    size = len(per_step) // 4
    return [float(np.median(per_step[i * size:(i + 1) * size])) for i in range(4)], int(train["step"][-1])


def main(paths):
    if not paths:
        print("usage: step_time_quarters.py RUN.h5 [RUN.h5 ...]", file=sys.stderr)
        return 2
    print("| run | steps | s/step, quarters 1-4 | last / first |")
    print("|---|---:|---|---:|")
    for path in paths:
        medians, steps = quarters(path)
        print("| %s | %d | %s | %.2f |" % (path, steps, " / ".join("%.3f" % m for m in medians),
                                          medians[3] / medians[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
