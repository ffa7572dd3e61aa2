#!/usr/bin/env bash
# K-FAC's overhead on one rank: the workstation ResNet-50 trained for one
# inverse period (100 steps: inverses at step 0, factors every 10 steps, as
# KAISA's ResNet recipe) with SGD alone and with K-FAC+SGD, same seed,
# threads and data, in this one command. Prints each run's per-phase
# seconds from /timing and ends with the headline ratio of training time
# per step (train_s: steps only, evaluation excluded).
#
#   tests/bench/kfac_overhead.sh [OPTBENCH] [THREADS] [STEPS]
set -euo pipefail
OPTBENCH=${1:-build/optbench}
THREADS=${2:-2}
STEPS=${3:-100}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON=(--workload resnet50 --preset workstation --optimizer sgd --seed 1 --threads "$THREADS"
        --max-steps "$STEPS" --set run.eval_every=1000 --set data.eval_limit=256 --force)

"$OPTBENCH" run "${COMMON[@]}" --out "$WORK/sgd.h5" > "$WORK/sgd.log" 2>&1
"$OPTBENCH" run "${COMMON[@]}" --precond kfac --set kfac.factor_update_steps=10 \
  --set kfac.inv_update_steps=100 --out "$WORK/kfac.h5" > "$WORK/kfac.log" 2>&1

/usr/bin/python3 - "$WORK/sgd.h5" "$WORK/kfac.h5" "$STEPS" "$THREADS" <<'PY'
import sys
import h5py
sgd_path, kfac_path, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def load(path):
    with h5py.File(path, "r") as f:
        phases = {r["phase"].decode(): float(r["seconds"]) for r in f["timing"][:] if r["rank"] == 0}
        cpu = f.attrs["cpu_model"]
        return float(f.attrs["train_s"]), phases, cpu.decode() if isinstance(cpu, bytes) else cpu
sgd_s, sgd_phases, cpu = load(sgd_path)
kfac_s, kfac_phases, _ = load(kfac_path)
print(f"workstation ResNet-50, batch 128, {steps} steps, {threads} threads, {cpu}")
print(f"{'phase':<16}{'sgd s':>10}{'kfac s':>10}")
for phase in kfac_phases:
    print(f"{phase:<16}{sgd_phases.get(phase, 0.0):>10.2f}{kfac_phases[phase]:>10.2f}")
print(f"{'train_s':<16}{sgd_s:>10.2f}{kfac_s:>10.2f}")
print(f"step time: sgd {1000 * sgd_s / steps:.1f} ms, kfac {1000 * kfac_s / steps:.1f} ms")
print(f"K-FAC step time / SGD step time: {kfac_s / sgd_s:.3f} (goal <= 1.25)")
PY
