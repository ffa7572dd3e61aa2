#!/usr/bin/env bash
# optbench data bert: shards from a small text file and a small dictd
# dictionary (and from dict-gcide's first entries when it is installed)
# pass optbench's own reader (--check) and an independent h5py check; the
# same seed gives the same bytes, another seed other data; bad input exits
# 2 with one line and leaves no output behind.
source "$(dirname "$0")/lib.sh"
DATA=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../data")
PY=/usr/bin/python3
gzip -c "$DATA/bert_mini.dict" > mini.dict.dz
cp "$DATA/bert_mini.index" mini.index

make_shards() { "$OPTBENCH" data bert --corpus "$DATA/bert_corpus.txt" mini.dict.dz --vocab-size 300 --dupe 3 "$@"; }

# Independent of optbench's reader: shapes, int32 types, [CLS] A [SEP] B
# [SEP] rows with their masks and segments, predictions inside the rows.
cat > check_shards.py <<'EOF'
import sys
import h5py
import numpy as np

vocab = [line.rstrip("\n") for line in open(sys.argv[1], encoding="utf-8")]
cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
for path in sys.argv[2:]:
    with h5py.File(path, "r") as f:
        ids, mask, seg = f["input_ids"][:], f["input_mask"][:], f["segment_ids"][:]
        pos, lm_ids, nsp = f["masked_lm_positions"][:], f["masked_lm_ids"][:], f["next_sentence_labels"][:]
        n, seq = ids.shape
        assert all(f[k].dtype == np.int32 for k in f), path
        assert mask.shape == seg.shape == (n, seq) and pos.shape == lm_ids.shape and nsp.shape == (n,), path
        assert ids.max() < len(vocab) and ids.min() >= 0, path
        for r in range(n):
            length = int(mask[r].sum())
            assert (mask[r, :length] == 1).all() and (ids[r, length:] == 0).all(), (path, r)
            assert ids[r, 0] == cls and ids[r, length - 1] == sep and (ids[r, :length] == sep).sum() == 2, (path, r)
            b_start = int(np.argmax(seg[r])) if seg[r].any() else -1
            assert ids[r, b_start - 1] == sep and (seg[r, b_start:length] == 1).all() and (seg[r, length:] == 0).all()
            real = pos[r] > 0
            assert real.any() and (pos[r][real] < length).all() and (np.diff(pos[r][real]) > 0).all(), (path, r)
            assert (lm_ids[r][~real] == 0).all() and (lm_ids[r][real] > 4).all(), (path, r)
        assert set(np.unique(nsp)) <= {0, 1}, path
    print(path, n, "rows ok")
EOF

# Whether two shard directories hold the same data (h5py, dataset by dataset).
cat > same_data.py <<'EOF'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    sys.exit(0 if set(a) == set(b) and all(np.array_equal(a[k][:], b[k][:]) for k in a) else 1)
EOF

start=$SECONDS
make_shards --out out1 --seed 5 --shards 2 > made.txt 2>&1
check "shards from a text file and a dictd dictionary" test $? -eq 0
check "corpus: 15 paragraphs and 4 dictionary entries" grep -q "corpus: 19 documents" made.txt
check "every output is in place" test -s out1/vocab.txt -a -s out1/train_000.h5 -a -s out1/train_001.h5 -a -s out1/eval.h5
check "no temporary file is left" test -z "$(ls -A out1 | grep partial)"
check "optbench's reader validates every shard" "$OPTBENCH" data bert --check out1/train_000.h5 out1/train_001.h5 out1/eval.h5
check "h5py validates every shard" $PY check_shards.py out1/vocab.txt out1/train_000.h5 out1/train_001.h5 out1/eval.h5
check "vocabulary of 300 tokens, special tokens first" test "$(head -5 out1/vocab.txt | tr '\n' ' ')" = "[PAD] [UNK] [CLS] [SEP] [MASK] " -a "$(wc -l < out1/vocab.txt)" -eq 300

check "the same seed again" make_shards --out out2 --seed 5 --shards 2
for f in vocab.txt train_000.h5 train_001.h5 eval.h5; do
  check "same seed: $f has the same bytes" cmp out1/$f out2/$f
done
check "same seed: the same data (h5py)" $PY same_data.py out1/train_000.h5 out2/train_000.h5
check "another seed" make_shards --out out3 --seed 6 --shards 2
check "another seed: other data (h5py)" bash -c "! $PY same_data.py out1/train_000.h5 out3/train_000.h5"
check "a given vocab.txt is used as is" "$OPTBENCH" data bert --corpus "$DATA/bert_corpus.txt" --vocab out1/vocab.txt --out out4
check "  ... and copied unchanged" cmp out1/vocab.txt out4/vocab.txt

# expect_bad "description" "stderr pattern" args...
expect_bad() {
  local what=$1 pattern=$2
  shift 2
  rm -rf bad
  "$OPTBENCH" data bert "$@" > stdout.txt 2> stderr.txt
  local code=$?
  check "$what: exit code 2" test "$code" -eq 2
  check "$what: one line on stderr" test "$(wc -l < stderr.txt)" -eq 1
  check "$what: message names it ($pattern)" grep -qE -e "$pattern" stderr.txt
  check "$what: no output directory left" test ! -e bad
}
: > empty.txt
printf 'only one paragraph here.\n' > one_doc.txt
expect_bad "missing corpus" '/nonexistent/corpus.txt: No such file' --corpus /nonexistent/corpus.txt --out bad
expect_bad "empty corpus" 'empty.txt.*holds 0 documents' --corpus empty.txt --out bad
mkdir -p no_text
expect_bad "one document" 'one_doc.txt.*holds 1 document with text' --corpus one_doc.txt --out bad
expect_bad "directory without text" 'no_text: no .txt, .txt.gz or .dict.dz files' --corpus no_text --out bad
expect_bad "vocabulary too small" 'vocabulary size 20 is too small' --corpus "$DATA/bert_corpus.txt" --out bad --vocab-size 20
expect_bad "missing vocab.txt" 'nope.txt: cannot read' --corpus "$DATA/bert_corpus.txt" --out bad --vocab nope.txt
expect_bad "vocab and vocab size" '--vocab and --vocab-size' --corpus "$DATA/bert_corpus.txt" --out bad --vocab out1/vocab.txt --vocab-size 99
expect_bad "existing output" 'out1: exists and is not empty \(use --force' --corpus "$DATA/bert_corpus.txt" --out out1
expect_bad "unwritable output" '/proc/optbench: cannot create' --corpus "$DATA/bert_corpus.txt" --out /proc/optbench
expect_bad "too many shards" 'cannot fill 100000 shards' --corpus "$DATA/bert_corpus.txt" --out bad --shards 100000
expect_bad "sequence too short" '--seq: expected a whole number in \[5,' --corpus "$DATA/bert_corpus.txt" --out bad --seq 4
expect_bad "bad eval fraction" '--eval-frac: expected a fraction' --corpus "$DATA/bert_corpus.txt" --out bad --eval-frac 1.5
expect_bad "unknown flag" 'unknown flag --bogus' --out bad --bogus
expect_bad "missing --out" 'expected --out DIR' --corpus "$DATA/bert_corpus.txt"
expect_bad "checking a non-shard" 'vocab.txt: not an HDF5 file' --check out1/vocab.txt
check "--force writes into a used directory" make_shards --out out1 --seed 5 --force
check "  ... and removes training shards beyond --shards" test ! -e out1/train_001.h5

if [ -r /usr/share/dictd/gcide.dict.dz ]; then
  "$OPTBENCH" data bert --out gcide --max-docs 300 --vocab-size 2000 --dupe 2 > made.txt 2>&1
  check "dict-gcide (default corpus), first 300 entries" test $? -eq 0
  check "  ... 300 documents read" grep -q "corpus: 300 documents" made.txt
  check "  ... shards pass optbench's reader" "$OPTBENCH" data bert --check gcide/train_000.h5 gcide/eval.h5
  check "  ... and h5py" $PY check_shards.py gcide/vocab.txt gcide/train_000.h5 gcide/eval.h5
else
  echo "dict-gcide is not installed (ci/setup installs it): its checks are skipped"
fi
check "under 60 s" test $((SECONDS - start)) -lt 60
