#!/usr/bin/env bash
# Co-optimization experiment on BANKING77 (docs/results.md, "Co-optimization (BANKING77)").
# Usage: scripts/coopt-banking77.sh BANKING77_DIR [OUT_DIR]
#   BANKING77_DIR holds train.csv and test.csv (text,category). BANKING77 is CC BY-NC 4.0:
#   it is read from where you keep it and never copied into this repository.
# Env: ROUTENLP (the CLI; default build/cli/routenlp), THREADS (libtorch threads; default 2),
#      SEED (split, T1 init, teacher errors; default 1).
# T1 = LocalClassifierTier trained from scratch (dim 128, 2 layers, max length 32) on 1000 rows;
# teacher = gold labels with 3% seeded label errors, $8 / 1K queries; T1 $0.01 / 1K.
# Both strategies start from the same T1 and spend 400 teacher-labelled examples per iteration,
# 3 iterations each (no early stop, no revert, so every iteration is reported).
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 BANKING77_DIR [OUT_DIR]" >&2
  exit 2
fi
DATA=$1
OUT=${2:-coopt-banking77-out}
ROUTENLP=${ROUTENLP:-build/cli/routenlp}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
for f in train.csv test.csv; do
  [[ -f "$DATA/$f" ]] || { echo "$0: $DATA/$f not found" >&2; exit 2; }
done
mkdir -p "$OUT"
common=(--train "$DATA/train.csv" --eval "$DATA/test.csv" --budget 400 --iterations 3
        --min-gain -1 --no-revert --teacher-error 0.03 --t1-cost 0.00001 --teacher-cost 0.008
        --alpha 0.10 --epsilon 0.10 --t1-epochs 30 --distill-epochs 4 --seed "$SEED" --threads "$THREADS")
start=$(date +%s)
"$ROUTENLP" coopt run "${common[@]}" --strategy targeted --out "$OUT/targeted" | tee "$OUT/targeted.txt"
"$ROUTENLP" coopt run "${common[@]}" --strategy random --t1 "$OUT/targeted/t1-initial" \
  --out "$OUT/random" | tee "$OUT/random.txt"
echo "total wall time: $(( $(date +%s) - start )) s" | tee "$OUT/time.txt"
