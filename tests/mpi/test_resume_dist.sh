#!/usr/bin/env bash
# Multi-rank checkpoints: a 2-rank run killed after its checkpoint and
# resumed on 2 ranks continues the uninterrupted run's loss sequence and
# evaluations bit for bit. The ranks hold different state: MEM-OPT K-FAC
# (grad_worker_frac 1/2: each rank keeps only its layers' inverses) and
# DP-KFAC (each layer's factors live on its owner alone), and batch-norm
# with local statistics (each rank's running statistics differ, and each
# rank evaluates its shard with its own). The checkpoint stores those per
# rank (rank<r>/...), so a resume on another rank count is refused; a
# 1-rank run may still start from its weights (run.init_from), taking the
# per-rank batch-norm statistics from rank 0.
source "$(dirname "$0")/../e2e/lib.sh"

MPIRUN=(mpirun -q -np 2 --oversubscribe)
CKPT="/usr/bin/python3 $(dirname "$0")/../e2e/ckpt_tensor.py"
run2() { "${MPIRUN[@]}" "$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --threads 1 "$@"; }
# 10 steps of 8 per epoch, so an evaluation falls after the resume; factors
# every 2 steps and inverses every 3: the checkpoint after step 4 holds
# running factors and inverses from step 3 that steps 4-5 still use.
CADENCE=(--epochs 2 --max-steps 10 --seed 3 --set kfac.factor_update_steps=2 --set kfac.inv_update_steps=3)

resume_case() {
  local name=$1; shift
  check "$name: uninterrupted 2-rank run" run2 "${CADENCE[@]}" "$@" --out $name-whole.h5
  run2 "${CADENCE[@]}" "$@" --out $name-part.h5 --checkpoint-every 4 --set debug.kill_at_step=5 > $name-kill.out 2>&1
  code=$?
  check "$name: interrupted run was killed (exit $code)" test "$code" -ne 0
  check "$name: checkpoint exists" test -s $name-part.h5.ckpt
  check "$name: rank 1's K-FAC counters are in the checkpoint" $CKPT $name-part.h5.ckpt rank1/kfac.counters
  "$OPTBENCH" run --resume $name-part.h5.ckpt > $name-one-rank.out 2>&1
  code=$?
  check "$name: resume on 1 rank is refused (exit 2, got $code)" test "$code" -eq 2
  check "$name: the refusal names the rank count" grep -q "written by a run of 2 rank" $name-one-rank.out
  check "$name: resume on 2 ranks completes" "${MPIRUN[@]}" "$OPTBENCH" run --resume $name-part.h5.ckpt
  check "$name: resumed file validates" $H5READ schema $name-part.h5
  for f in whole part; do
    $H5READ column $name-$f.h5 train loss > $name-$f.loss
    $H5READ column $name-$f.h5 eval metric > $name-$f.metric
  done
  check "$name: 10 steps in the resumed file" test "$(wc -l < $name-part.loss)" -eq 10
  check "$name: an evaluation after the resume" test "$(wc -l < $name-whole.metric)" -ge 1
  check "$name: identical loss sequence (bits)" cmp $name-whole.loss $name-part.loss
  check "$name: identical eval metrics" cmp $name-whole.metric $name-part.metric
}

resume_case memopt --precond kfac --set kfac.grad_worker_frac=0.5
resume_case dpkfac --precond dp-kfac

# run.init_from the 2-rank checkpoint on 1 rank: with batch-norm momentum 0
# the step leaves the running statistics as loaded, so the new checkpoint
# holds rank 0's, not rank 1's (which differ).
"$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --threads 1 --max-steps 1 --checkpoint-every 1 \
  --set run.init_from=memopt-part.h5.ckpt --set model.bn_momentum=0 --out init-one.h5 > init-one.out 2>&1
check "init_from a 2-rank checkpoint on 1 rank runs" test -s init-one.h5.ckpt
check "  rank 0's and rank 1's statistics differ" bash -c \
  "[ \"\$($CKPT memopt-part.h5.ckpt rank0/bn1.running_mean)\" != \"\$($CKPT memopt-part.h5.ckpt rank1/bn1.running_mean)\" ]"
check "  the 1-rank run holds rank 0's" bash -c \
  "[ \"\$($CKPT memopt-part.h5.ckpt rank0/bn1.running_mean)\" = \"\$($CKPT init-one.h5.ckpt bn1.running_mean)\" ]"
