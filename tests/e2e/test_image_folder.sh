#!/usr/bin/env bash
# The full ResNet-50 preset on a real ImageNet-layout folder (two classes of
# a tiny JPEG): one training step and an evaluation through the CLI, then
# the folder's bad-input errors (exit 2, one line naming the path).
source "$(dirname "$0")/lib.sh"

# A 48x36 colour-gradient JPEG (libjpeg, quality 50).
JPEG_B64='/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAkADADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDkEg9qnSH2q2kHtUyQe1elKqY0qxUSD2qdIfarSQe1TpB7VjKqepRrFRIfap0h9qtJB7VOkHtWEqp6tKsUEg9qmSD2q2kHtUyQ+1ZSqn5/SrFVIPapkg9qtpD7VMkPtWEqp6lGsVUg9qmSD2q2kPtUyQe1Yyqnq0qxmogqdEFFFOR8NRJkQVOiCiisJHq0iZEFTogoorCR6lE//9k='

# make_tree DIR: DIR/train/{n01,n02}/ two images each, DIR/val/{n01,n02}/ one each.
make_tree() {
  local class
  for class in n01 n02; do
    mkdir -p "$1/train/$class" "$1/val/$class"
    echo "$JPEG_B64" | base64 -d > "$1/train/$class/${class}_1.JPEG"
    echo "$JPEG_B64" | base64 -d > "$1/train/$class/${class}_2.jpg"
    echo "$JPEG_B64" | base64 -d > "$1/val/$class/${class}_val.JPEG"
  done
}

full() { "$OPTBENCH" run --workload resnet50 --preset full --optimizer sgd --threads 2 --batch-size 2 "$@"; }

make_tree tree
check "full preset on a JPEG folder exits 0" full --data tree --max-steps 1 --out run.h5
check "schema v1 complete (h5py)" $H5READ schema run.h5
check "1 train row" bash -c "[ \$($H5READ rows run.h5 train) = 1 ]"
check "eval row written" bash -c "[ \$($H5READ rows run.h5 eval) -ge 1 ]"
check "losses finite" bash -c "$H5READ column run.h5 train loss | grep -vqiE 'nan|inf'"
check "full ResNet-50 parameters" bash -c "[ \$($H5READ attr run.h5 params) = 25557032 ]"

# expect_bad "description" "stderr pattern" args...
expect_bad() {
  local what=$1 pattern=$2
  shift 2
  rm -f bad.h5
  expect_rejected "$what" "$pattern" full --max-steps 1 --out bad.h5 "$@"
}

mkdir -p notrain/val/n01
expect_bad "no train/" 'notrain/train: cannot read the folder' --data notrain
check "no train/: no output file" test ! -e bad.h5
make_tree emptyclass && mkdir emptyclass/train/n00
expect_bad "empty class folder" 'emptyclass/train/n00: no images' --data emptyclass
check "empty class folder: no output file" test ! -e bad.h5
# Every training image cut short, so the first batch meets one whichever the shuffle.
make_tree truncated
for f in truncated/train/*/*; do head -c 300 tree/train/n01/n01_1.JPEG > "$f"; done
expect_bad "truncated JPEG" 'truncated/train/n0[12]/n0[12]_[12]\.(JPEG|jpg): corrupt' --data truncated
