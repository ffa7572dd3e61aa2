#!/usr/bin/env bash
# Precision policies through the CLI: every policy trains a few smoke steps
# and logs /precision; a dynamic scale too large for binary16 skips steps,
# halves each time and leaves the parameters untouched; a resumed
# fp16-dynamic run continues the same loss and scale sequence; rounded
# inputs kept in 2 bytes for backward change no loss and save memory; bad
# policy settings are refused with exit 2.
source "$(dirname "$0")/lib.sh"
CKPT="/usr/bin/python3 $(dirname "$0")/ckpt_tensor.py"

for policy in fp16:dynamic bf16:none fp8-e5m2:dynamic hfp8:adaptive fqt:none; do
  precision=${policy%%:*} scaling=${policy##*:}
  check "$precision/$scaling runs" smoke --max-steps 2 --precision $precision --loss-scale $scaling \
    --set precision.log_every=1 --out $precision.h5
  check "$precision: schema with /precision" $H5READ schema $precision.h5
  check "$precision: losses finite" bash -c "! $H5READ column $precision.h5 train loss | grep -qiE 'nan|inf'"
  # 2 log steps x the 54 Linear/Conv2d layers of the workstation network
  check "$precision: /precision rows" bash -c "[ \$($H5READ rows $precision.h5 precision) = 108 ]"
  check "$precision: precision attribute" bash -c "[ \$($H5READ attr $precision.h5 precision) = $precision ]"
done
# precision.saved_inputs=format (the default, used above) against fp32:
# the 2-byte copies hold the same values, so the losses agree bit for bit,
# and the activations' peak falls; FQT's grids have no 2-byte holder, so
# nothing changes there. Under K-FAC the captured layers keep fp32 copies.
peak() { $H5READ table "$1" memory | awk -v c="$2" '$2 == c {print $3}' | sort -n | tail -1; }
for policy in fp16:dynamic bf16:none hfp8:adaptive fqt:none; do
  precision=${policy%%:*} scaling=${policy##*:}
  check "$precision, fp32 saved inputs, runs" smoke --max-steps 2 --precision $precision --loss-scale $scaling \
    --set precision.log_every=1 --set precision.saved_inputs=fp32 --out $precision-wide.h5
  $H5READ column $precision.h5 train loss > $precision.loss
  $H5READ column $precision-wide.h5 train loss > $precision-wide.loss
  check "$precision: 2-byte saved inputs, identical losses (bits)" cmp $precision.loss $precision-wide.loss
  narrow=$(peak $precision.h5 activations) wide=$(peak $precision-wide.h5 activations)
  if [ $precision = fqt ]; then
    check "fqt: activations unchanged ($narrow vs $wide)" test "$narrow" -eq "$wide"
  else
    check "$precision: activations fall ($narrow vs $wide)" test "$narrow" -lt "$wide"
  fi
done
for saved in format fp32; do
  smoke --max-steps 3 --precision fp16 --loss-scale dynamic --precond kfac --set kfac.factor_update_steps=2 \
    --set precision.saved_inputs=$saved --out kfac-$saved.h5 > kfac-$saved.out 2>&1
  $H5READ column kfac-$saved.h5 train loss > kfac-$saved.loss
done
check "K-FAC + fp16: 3 losses" test "$(wc -l < kfac-format.loss)" -eq 3
check "K-FAC + fp16: identical losses with 2-byte and fp32 saved inputs" cmp kfac-format.loss kfac-fp32.loss

check "fp16 dynamic: the loss scale starts at 2^16" \
  bash -c "$H5READ column fp16.h5 train loss_scale | head -1 | grep -qx '0x1.0000000000000p+16'"
check "fp32 run has an empty /precision" smoke --max-steps 1 --out fp32.h5
check "fp32: no precision rows" bash -c "[ \$($H5READ rows fp32.h5 precision) = 0 ]"

# 2^100 overflows binary16 on every one of 3 steps: 3 skips, scale halving.
huge="--precision fp16 --loss-scale dynamic --set loss_scale.init=1.2676506002282294e30"
check "skipping run, 1 step" smoke $huge --max-steps 1 --checkpoint-every 1 --out skip1.h5
check "skipping run, 3 steps" smoke $huge --max-steps 3 --checkpoint-every 1 --out skip3.h5
check "3 skipped steps recorded" bash -c "[ \$($H5READ attr skip3.h5 skipped_steps) = 3 ]"
check "the scale halves after each skip" \
  bash -c "[ \"\$($H5READ column skip3.h5 train loss_scale | tr '\n' ' ')\" = '0x1.0000000000000p+100 0x1.0000000000000p+99 0x1.0000000000000p+98 ' ]"
check "an applied step for comparison" smoke --max-steps 1 --checkpoint-every 1 --out applied1.h5
for t in conv1.weight fc.weight fc.weight.momentum; do
  $CKPT skip1.h5.ckpt $t > skip1.$t 2>&1
  $CKPT skip3.h5.ckpt $t > skip3.$t 2>&1
  $CKPT applied1.h5.ckpt $t > applied1.$t 2>&1
done
check "skipped steps leave conv1.weight untouched" cmp skip1.conv1.weight skip3.conv1.weight
check "skipped steps leave fc.weight untouched" cmp skip1.fc.weight skip3.fc.weight
check "skipped steps leave the momentum untouched" cmp skip1.fc.weight.momentum skip3.fc.weight.momentum
check "an applied step does change fc.weight" bash -c "! cmp -s skip1.fc.weight applied1.fc.weight"

# Resume under dynamic scaling (growth every 2 steps, so the scale moves).
dyn="--precision fp16 --loss-scale dynamic --set loss_scale.growth_interval=2 --seed 3"
check "uninterrupted fp16-dynamic run" smoke $dyn --max-steps 8 --out whole.h5
smoke $dyn --max-steps 8 --out part.h5 --checkpoint-every 4 --set debug.kill_at_step=6 > kill.out 2>&1
check "interrupted run was killed (exit 137)" test $? -eq 137
check "resume completes" "$OPTBENCH" run --resume part.h5.ckpt
for f in whole part; do
  $H5READ column $f.h5 train loss > $f.loss
  $H5READ column $f.h5 train loss_scale > $f.scale
done
check "identical loss sequence after resume (bits)" cmp whole.loss part.loss
check "identical loss-scale sequence after resume" cmp whole.scale part.scale
check "the scale grew during the run" bash -c "[ \$(sort -u whole.scale | wc -l) -gt 1 ]"

for bad in "--loss-scale static:0" "--loss-scale sometimes" "--precision fp4" "--set precision.exempt=nosuchlayer" \
           "--set fqt.bits=0" "--set precision.saved_inputs=fp8"; do
  rm -f bad.h5
  "$OPTBENCH" run --workload resnet50 --preset smoke --optimizer sgd --max-steps 1 --out bad.h5 $bad > bad.out 2>&1
  check "refused with exit 2: $bad" test $? -eq 2
  check "one line for: $bad" bash -c "[ \$(wc -l < bad.out) = 1 ]"
  check "no file left for: $bad" test ! -e bad.h5
done
