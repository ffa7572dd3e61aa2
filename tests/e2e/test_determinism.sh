#!/usr/bin/env bash
# Same seed and thread count give a bit-identical loss sequence; another
# seed gives another one.
source "$(dirname "$0")/lib.sh"

check "run a" smoke --max-steps 6 --seed 7 --out a.h5
check "run b" smoke --max-steps 6 --seed 7 --out b.h5
check "run c (other seed)" smoke --max-steps 6 --seed 8 --out c.h5
for f in a b c; do $H5READ column $f.h5 train loss > $f.loss; $H5READ column $f.h5 eval metric > $f.metric; done
check "6 losses logged" bash -c "[ \$(wc -l < a.loss) = 6 ]"
check "same seed: identical losses (bits)" cmp a.loss b.loss
check "same seed: identical eval metric" cmp a.metric b.metric
check "other seed: different losses" bash -c "! cmp -s a.loss c.loss"
