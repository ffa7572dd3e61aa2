#!/usr/bin/env bash
# Precision policies on the workstation ResNet-50 for a fixed number of
# steps (not to convergence): per policy the step time, the mean training
# loss over the last 20 steps, the skipped steps, and the gradient
# underflow / overflow fractions at the GEMM inputs from /precision
# (averaged over layers and log rows). Ends with the emulation cost of
# binary16 (fp16 step time over fp32's, measured in this run). The one
# evaluation at the end runs on 256 test images only: it is not reported.
#   tests/bench/precision_policies.sh OPTBENCH [STEPS] [THREADS] [SEED]
set -euo pipefail
optbench=$(realpath "$1")
steps=${2:-100}
threads=${3:-2}
seed=${4:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
policies=(
  "fp32 none" "fp16 none" "fp16 static:1024" "fp16 dynamic" "fp16 adaptive" "bf16 none"
  "hfp8 dynamic" "fp8-e5m2 dynamic" "fqt none --set fqt.bits=8" "fqt none --set fqt.bits=5 --set fqt.quantizer=bhq"
)
for i in "${!policies[@]}"; do
  read -r precision scaling extra <<< "${policies[$i]}"
  "$optbench" run --workload resnet50 --preset workstation --optimizer sgd --seed "$seed" --threads "$threads" \
    --max-steps "$steps" --precision "$precision" --loss-scale "$scaling" --set run.eval_every=1000 \
    --set data.eval_limit=256 \
    --set precision.log_every=10 $extra --out "$work/$i.h5" > "$work/$i.log" 2>&1 ||
    { echo "policy ${policies[$i]} failed:"; tail -3 "$work/$i.log"; exit 1; }
done
/usr/bin/python3 - "$work" "${policies[@]}" <<'PY'
import sys
import h5py
import numpy as np

work, policies = sys.argv[1], sys.argv[2:]
print(f"{'policy':<42} {'s/step':>7} {'loss(last 20)':>13} {'skipped':>7} {'underflow':>10} {'overflow':>9}")
step_s = {}
for i, policy in enumerate(policies):
    with h5py.File(f"{work}/{i}.h5", "r") as f:
        train = f["train"][:]
        precision = f["precision"][:] if "precision" in f else np.zeros(0)
        seconds = float(train["train_s"][-1]) / len(train)
        loss = float(np.mean(train["loss"][-20:]))
        skipped = int(f.attrs.get("skipped_steps", 0))
        underflow = float(np.mean(precision["underflow_frac"])) if len(precision) else 0.0
        overflow = float(np.mean(precision["overflow_frac"])) if len(precision) else 0.0
    step_s[policy] = seconds
    print(f"{policy:<42} {seconds:7.3f} {loss:13.4f} {skipped:7d} {underflow:10.2e} {overflow:9.2e}")
print(f"emulation cost: fp16 step / fp32 step = {step_s['fp16 none'] / step_s['fp32 none']:.2f}x")
PY
