#!/usr/bin/env bash
# Every committed reference but the full presets' (results/reference/
# <workload>/<preset>/<name>.h5, or those under $OB_REFERENCE_DIR): a fresh
# seed, one above the reference's largest, of the reference's own config
# trains and passes `optbench check` against it (DESIGN.md section 7). A
# ResNet-50 workstation reference costs one training run, ~20 minutes on 2
# cores, so this is the `convergence` label, outside the default tier:
#   ctest --test-dir build -L convergence
# The default directory is resolved before lib.sh moves into its scratch
# directory, so a relative script path works too.
REFERENCES=$(realpath -m "${OB_REFERENCE_DIR:-$(dirname "$0")/../../results/reference}")
source "$(dirname "$0")/../e2e/lib.sh"

check "reference directory $REFERENCES exists" test -d "$REFERENCES"
[ -d "$REFERENCES" ] || exit 1
checked=0
for reference in "$REFERENCES"/*/*/*.h5; do
  [ -e "$reference" ] || continue
  preset=$(basename "$(dirname "$reference")")
  [ "$preset" = full ] && continue
  name=$(basename "$(dirname "$(dirname "$reference")")")-$preset-$(basename "$reference" .h5)
  $H5READ attr "$reference" config > "$name.ini"
  seed=$(( $($H5READ table "$reference" seeds | awk '{print $1}' | sort -n | tail -1) + 1 ))
  check "$name: fresh seed $seed trains with the reference's config" \
    "$OPTBENCH" run --config "$name.ini" --seed "$seed" --out "$name-fresh.h5" --force
  "$OPTBENCH" check "$name-fresh.h5" --reference "$reference" > "$name-check.txt" 2>&1
  code=$?
  cat "$name-check.txt"
  check "$name: seed $seed passes optbench check (exit $code)" test "$code" -eq 0
  checked=$((checked + 1))
done
check "at least one reference checked (under $REFERENCES)" test "$checked" -ge 1
