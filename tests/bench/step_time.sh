#!/usr/bin/env bash
# Median step time of a 16-step workstation ResNet-50 + SGD run at 2 threads
# (steps 7-16, after warm-up), with the first three losses in hex so that
# two builds can be checked to train bit-identically:
#   tests/bench/step_time.sh OPTBENCH LABEL [optbench run flags...]
# e.g. tests/bench/step_time.sh build/optbench fqt8 --precision fqt --set fqt.bits=8
set -euo pipefail
optbench=$1 label=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$optbench" run --workload resnet50 --preset workstation --optimizer sgd --seed 1 --threads 2 --max-steps 16 \
  --set run.log_every=1 --set run.eval_every=1000 --set data.eval_limit=128 --out "$work/run.h5" "$@" > /dev/null 2>&1
/usr/bin/python3 - "$work/run.h5" "$label" <<'PY'
import sys
import h5py
import numpy as np
train = h5py.File(sys.argv[1], "r")["train"][:]
step_s = np.diff(train["train_s"])[5:]
print(sys.argv[2], "median s/step %.3f" % np.median(step_s), [x.hex() for x in train["loss"][:3]])
PY
