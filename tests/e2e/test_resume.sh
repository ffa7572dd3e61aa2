#!/usr/bin/env bash
# A run killed (SIGKILL) after its checkpoint and resumed yields the same
# loss sequence as an uninterrupted run.
source "$(dirname "$0")/lib.sh"

check "uninterrupted run" smoke --epochs 2 --max-steps 12 --seed 3 --out whole.h5
smoke --epochs 2 --max-steps 12 --seed 3 --out part.h5 --checkpoint-every 4 --set debug.kill_at_step=6 > kill.out 2>&1
code=$?
check "interrupted run was killed (exit 137)" test "$code" -eq 137
check "checkpoint exists" test -s part.h5.ckpt
check "resume completes" "$OPTBENCH" run --resume part.h5.ckpt
check "resumed file validates" $H5READ schema part.h5
for f in whole part; do
  $H5READ column $f.h5 train loss > $f.loss
  $H5READ column $f.h5 train step > $f.step
  $H5READ column $f.h5 eval metric > $f.metric
done
check "12 steps in the resumed file" bash -c "[ \$(wc -l < part.step) = 12 ]"
check "identical loss sequence (bits)" cmp whole.loss part.loss
check "identical eval metrics" cmp whole.metric part.metric
check "same final status" bash -c "[ \"\$($H5READ attr whole.h5 status)\" = \"\$($H5READ attr part.h5 status)\" ]"
check "resume with other flags is refused (2)" bash -c "'$OPTBENCH' run --resume part.h5.ckpt --seed 4; [ \$? = 2 ]"
printf 'garbage' > bad.ckpt
check "corrupt checkpoint is refused (2)" bash -c "'$OPTBENCH' run --resume bad.ckpt; [ \$? = 2 ]"
