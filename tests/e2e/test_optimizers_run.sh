#!/usr/bin/env bash
# AdamW and LAMB through the CLI: smoke runs with finite losses (LAMB also
# under K-FAC), gradient clipping, optimizer state in the memory table and
# in the plan, bad values refused, and an AdamW run killed after its
# checkpoint and resumed reproducing the uninterrupted losses bit for bit
# (moments and step count restored).
source "$(dirname "$0")/lib.sh"

finite() { # finite FILE.h5: every logged loss is a number
  $H5READ column "$1" train loss > finite.loss
  test "$(wc -l < finite.loss)" -gt 0 && ! grep -qiE 'nan|inf' finite.loss
}

# (a) each optimizer trains: 6 steps, finite losses, its name in the file.
for optimizer in adamw lamb; do
  check "$optimizer runs" smoke --optimizer $optimizer --max-steps 6 --out $optimizer.h5
  check "$optimizer: losses finite" finite $optimizer.h5
  check "$optimizer: optimizer attribute" test "$($H5READ attr $optimizer.h5 optimizer)" = $optimizer
done
check "lamb under K-FAC runs" smoke --optimizer lamb --precond kfac --max-steps 6 --out lamb-kfac.h5
check "lamb under K-FAC: losses finite" finite lamb-kfac.h5

# (b) clipping: the logged grad_norm is the norm before clipping, so step 1
# logs the same norm as an unclipped run; the clipped update then differs.
check "adamw with clipping runs" smoke --optimizer adamw --max-steps 2 --set grad.clip_norm=0.01 --out clip.h5
for f in adamw clip; do
  $H5READ column $f.h5 train grad_norm | head -1 > $f.norm1
  $H5READ column $f.h5 train loss | sed -n 2p > $f.loss2
done
check "clipping: step 1 logs the unclipped norm" cmp adamw.norm1 clip.norm1
check "clipping: the clipped step changes step 2's loss" bash -c "! cmp -s adamw.loss2 clip.loss2"

# (c) the moments and step count are optimizer state: twice the gradients'
# bytes plus 8, in the run's memory table and in the plan alike.
grads=$($H5READ table adamw.h5 memory | awk '$1 == 0 && $2 == "grads" {print $3}')
state=$($H5READ table adamw.h5 memory | awk '$1 == 0 && $2 == "optimizer_state" {print $3}')
check "run: optimizer_state = 2 x grads + 8 ($state vs $grads)" test "$state" = "$((2 * grads + 8))"
for optimizer in adamw lamb; do
  "$OPTBENCH" plan --workload resnet50 --preset smoke --optimizer $optimizer --format csv > plan.csv
  planned=$(awk -F, 'NR == 2 {print $7}' plan.csv)
  check "plan ($optimizer): optimizer_state = the run's ($planned vs $state)" test "$planned" = "$state"
done

# (d) bad values: exit 2, one line naming the key, no output file.
expect_bad() { # expect_bad key=value
  local key=${1%%=*}
  rm -f bad.h5
  smoke --optimizer lamb --max-steps 2 --out bad.h5 --set "$1" > stdout.txt 2> stderr.txt
  local code=$?
  check "$1: exit code 2 (got $code)" test "$code" -eq 2
  check "$1: one line on stderr" test "$(wc -l < stderr.txt)" -eq 1
  check "$1: message names $key" grep -q "$key" stderr.txt
  check "$1: no output file" test ! -e bad.h5
}
expect_bad adamw.beta1=1
expect_bad lamb.beta2=1.5
expect_bad lamb.eps=0
expect_bad lamb.max_trust_ratio=-1
expect_bad grad.clip_norm=-1

# (e) AdamW killed after its step-4 checkpoint, resumed: the same losses.
RESUME=(--optimizer adamw --max-steps 8 --seed 3 --set grad.clip_norm=1)
check "uninterrupted adamw run" smoke "${RESUME[@]}" --out whole.h5
smoke "${RESUME[@]}" --out part.h5 --checkpoint-every 4 --set debug.kill_at_step=6 > kill.out 2>&1
code=$?
check "interrupted run was killed (exit 137, got $code)" test "$code" -eq 137
check "resume completes" "$OPTBENCH" run --resume part.h5.ckpt
for f in whole part; do $H5READ column $f.h5 train loss > $f.loss; done
check "8 steps in the resumed file" test "$(wc -l < part.loss)" -eq 8
check "resumed adamw: identical loss sequence (bits)" cmp whole.loss part.loss
