#!/usr/bin/env bash
# K-FAC runs in one process: determinism, checkpoint/resume between factor
# and inverse updates, K-FAC's timing and memory rows, DP-KFAC with damped
# inverses, factors and inverses kept in fp16/bf16, and bad kfac values.
source "$(dirname "$0")/lib.sh"

kfac() { smoke --precond kfac "$@"; }

# Factors every 2 steps (0, 2, 4), inverses every 3 (0, 3): the checkpoint
# after step 4 holds factors averaged since the last update and inverses
# from step 3 that steps 4 and 5 still use.
CADENCE=(--max-steps 6 --seed 3 --set kfac.factor_update_steps=2 --set kfac.inv_update_steps=3)

# (a) same seed and threads: the same loss sequence, bit for bit.
check "run a" kfac "${CADENCE[@]}" --out a.h5
check "run b" kfac "${CADENCE[@]}" --out b.h5
for f in a b; do $H5READ column $f.h5 train loss > $f.loss; done
check "6 losses logged" test "$(wc -l < a.loss)" -eq 6
check "losses finite" bash -c "! grep -qiE 'nan|inf' a.loss"
check "same seed: identical losses (bits)" cmp a.loss b.loss

# (b) killed after its checkpoint, resumed: the uninterrupted sequence.
kfac "${CADENCE[@]}" --out part.h5 --checkpoint-every 4 --set debug.kill_at_step=5 > kill.out 2>&1
code=$?
check "interrupted run was killed (exit 137, got $code)" test "$code" -eq 137
check "checkpoint exists" test -s part.h5.ckpt
check "resume completes" "$OPTBENCH" run --resume part.h5.ckpt
check "resumed file validates" $H5READ schema part.h5
$H5READ column part.h5 train loss > part.loss
$H5READ column a.h5 eval metric > a.metric
$H5READ column part.h5 eval metric > part.metric
check "6 steps in the resumed file" test "$(wc -l < part.loss)" -eq 6
check "resumed: identical loss sequence (bits)" cmp a.loss part.loss
check "resumed: identical eval metrics" cmp a.metric part.metric
check "resumed: precond attribute kept" test "$($H5READ attr part.h5 precond)" = kfac

# (c) K-FAC's phases and memory categories are accounted.
$H5READ table a.h5 timing > timing.txt
$H5READ table a.h5 memory > memory.txt
for phase in factors inverses precondition; do
  check "/timing: $phase called" bash -c "awk '\$2 == \"$phase\" && \$4 > 0' timing.txt | grep -q ."
done
for category in kfac_factors kfac_inverses; do
  check "/memory: $category > 0" bash -c "awk '\$2 == \"$category\" && \$3 > 0' memory.txt | grep -q ."
done

# (d) DP-KFAC with damped Cholesky inverses.
check "dp-kfac, method inverse runs" smoke --precond dp-kfac --set kfac.method=inverse --max-steps 2 --out dp.h5
check "dp-kfac: status final" bash -c "$H5READ attr dp.h5 status | grep -Eqx 'budget_exhausted|converged'"
check "dp-kfac: precond attribute" test "$($H5READ attr dp.h5 precond)" = dp-kfac
check "dp-kfac: losses finite" bash -c "$H5READ column dp.h5 train loss | grep -vqiE 'nan|inf'"

# (e) factors and inverses kept in fp16 or bf16: exactly half the bytes
# of fp32 in both categories, workspace larger by exactly the wide scratch
# `optbench plan` predicts, losses within 1% of the fp32-storage run
# (measured: 2e-3 for fp16, 4e-3 for bf16), and a narrow checkpoint
# resumes bit for bit.
peak() { awk -v c="$2" '$2 == c {print $3}' "$1"; }
for dtype in fp16 bf16; do
  NARROW=(--set kfac.factor_dtype=$dtype --set kfac.inv_dtype=$dtype)
  check "$dtype storage runs" kfac "${CADENCE[@]}" "${NARROW[@]}" --out $dtype.h5
  $H5READ table $dtype.h5 memory > $dtype.memory
  $H5READ column $dtype.h5 train loss > $dtype.loss
  for category in kfac_factors kfac_inverses; do
    check "$dtype: $category is half of fp32's ($(peak $dtype.memory $category) vs $(peak memory.txt $category))" \
      test "$(( 2 * $(peak $dtype.memory $category) ))" -eq "$(peak memory.txt $category)"
  done
  "$OPTBENCH" plan --workload resnet50 --preset smoke --optimizer sgd --precond kfac --ranks 1 --format csv \
    "${CADENCE[@]}" "${NARROW[@]}" > $dtype.plan
  scratch=$(awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "kfac_scratch_bytes") col = i}
                     NR == 2 {print $col}' $dtype.plan)
  grown=$(( $(peak $dtype.memory workspace) - $(peak memory.txt workspace) ))
  check "$dtype: workspace grows by the planned wide scratch ($grown vs ${scratch:-none})" \
    test "$grown" -eq "${scratch:-0}" -a "$grown" -gt 0
  check "$dtype: losses within 1% of fp32 storage" /usr/bin/python3 -c "
import sys
wide = [float.fromhex(x) for x in open('a.loss')]
narrow = [float.fromhex(x) for x in open('$dtype.loss')]
worst = max(abs(n - w) / abs(w) for n, w in zip(narrow, wide))
print('$dtype: largest relative loss difference', worst)
sys.exit(not (len(narrow) == len(wide) == 6 and worst < 0.01))"
done
kfac "${CADENCE[@]}" "${NARROW[@]}" --out bfpart.h5 --checkpoint-every 4 --set debug.kill_at_step=5 > kill.out 2>&1
check "bf16 storage: killed after its checkpoint" test -s bfpart.h5.ckpt
check "bf16 storage: resume completes" "$OPTBENCH" run --resume bfpart.h5.ckpt
$H5READ column bfpart.h5 train loss > bfpart.loss
check "bf16 storage resumed: identical loss sequence (bits)" cmp bf16.loss bfpart.loss
check "dp-kfac inverse, fp16 storage runs" smoke --precond dp-kfac --set kfac.method=inverse --max-steps 2 \
  --set kfac.factor_dtype=fp16 --set kfac.inv_dtype=fp16 --out dp16.h5
check "dp-kfac fp16: losses finite" bash -c "$H5READ column dp16.h5 train loss | grep -vqiE 'nan|inf'"
check "eigen_outer, bf16 inverses runs" kfac --max-steps 2 --set kfac.eigen_outer=true --set kfac.inv_dtype=bf16 \
  --out outer16.h5
check "eigen_outer bf16: losses finite" bash -c "$H5READ column outer16.h5 train loss | grep -vqiE 'nan|inf'"

# (f) KL clipping is summarised at every evaluation (event kfac_kl_clip):
# the summaries cover every preconditioned step once, the counts survive a
# kill and resume, no clipping leaves every scale at 1, and a tiny kl_clip
# clips every step.
kl_summaries() { # kl_summaries FILE: one JSON object per evaluation
  $H5READ table "$1" events | awk '$2 == "kfac_kl_clip" {$1 = ""; $2 = ""; print}'
}
kl_check() { # kl_check FILE PYTHON-CONDITION (over s: the list of summaries)
  kl_summaries "$1" | /usr/bin/python3 -c "
import json, sys
s = [json.loads(line) for line in sys.stdin]
print(s)
sys.exit(not (len(s) > 0 and ($2)))"
}
check "kl summaries: one per evaluation" test "$(kl_summaries a.h5 | wc -l)" -eq "$(wc -l < a.metric)"
check "kl summaries: 6 steps in all, counts and scales consistent" kl_check a.h5 \
  "sum(x['steps'] for x in s) == 6 and all(0 <= x['clipped'] <= x['steps'] and 0 < x['min_scale'] <= x['mean_scale'] <= 1 for x in s)"
kl_summaries a.h5 > a.kl
kl_summaries part.h5 > part.kl
check "kl summaries: identical after kill and resume" cmp a.kl part.kl
check "kl_clip 0 runs" kfac --max-steps 3 --set kfac.kl_clip=0 --out noclip.h5
check "kl_clip 0: no step clipped, every scale 1" kl_check noclip.h5 \
  "sum(x['steps'] for x in s) == 3 and all(x['clipped'] == 0 and x['mean_scale'] == x['min_scale'] == 1 for x in s)"
check "kl_clip 1e-12 runs" kfac --max-steps 3 --set kfac.kl_clip=1e-12 --out tinyclip.h5
check "kl_clip 1e-12: every step clipped" kl_check tinyclip.h5 \
  "sum(x['steps'] for x in s) == 3 and all(x['clipped'] == x['steps'] and x['mean_scale'] < 1e-3 for x in s)"
# kfac.kl_clip_lr=peak: the KL term takes the peak rate instead of the
# step's warm-up rate lr_0, so on a clipped first step (identical state in
# both runs) nu_peak * peak = nu_scheduled * lr_0.
KL_FIRST=(--max-steps 1 --set kfac.kl_clip=1e-12 --set sgd.lr=0.2 --set schedule.warmup_epochs=0.5)
check "kl_clip_lr scheduled runs" kfac "${KL_FIRST[@]}" --out klsched.h5
check "kl_clip_lr peak runs" kfac "${KL_FIRST[@]}" --set kfac.kl_clip_lr=peak --out klpeak.h5
first_scale() { kl_summaries "$1" | head -1 | /usr/bin/python3 -c "import json, sys; print(json.load(sys.stdin)['mean_scale'])"; }
lr0=$($H5READ column klsched.h5 train lr | head -1)
check "kl_clip_lr peak: the clipped first step scales by lr_0 / peak" /usr/bin/python3 -c "
import sys
scheduled, peak, lr0 = $(first_scale klsched.h5), $(first_scale klpeak.h5), float.fromhex('$lr0')
print('nu scheduled', scheduled, 'nu peak', peak, 'lr_0', lr0)
sys.exit(not (0 < lr0 < 0.2 and abs(scheduled * lr0 - peak * 0.2) <= 1e-5 * peak * 0.2))"

# (g) bad kfac values: exit 2, one line naming the key, no output file.
expect_bad() { # expect_bad "description" key args...
  local what=$1 key=$2
  shift 2
  rm -f bad.h5
  expect_rejected "$what" "$key" kfac --max-steps 2 --out bad.h5 "$@"
  check "$what: no output file" test ! -e bad.h5
}
expect_bad "damping 0" "kfac.damping" --set kfac.damping=0
expect_bad "fractional factor_update_steps" "kfac.factor_update_steps" --set kfac.factor_update_steps=1.5
expect_bad "two dampings without damping_epochs" "kfac.damping" --set kfac.damping=0.1,0.01
expect_bad "fp8 factors" "kfac.factor_dtype" --set kfac.factor_dtype=fp8
expect_bad "kl_clip_lr neither scheduled nor peak" "kfac.kl_clip_lr" --set kfac.kl_clip_lr=max
