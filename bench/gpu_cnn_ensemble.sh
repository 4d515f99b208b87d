#!/usr/bin/env bash
# Train several chapter-6 CNNs at once on one GPU (TIEFNET_DEVICE=gpu), then their majority vote:
#   OUT=results-folder bash bench/gpu_cnn_ensemble.sh [SEEDS...]
set -uo pipefail
OUT=${OUT:-gpu-ensemble}
mkdir -p "$OUT" /tmp/ens
export TIEFNET_DEVICE=gpu PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD/src
seeds=${*:-1 2 3}
recipe="--model cnn --dropout 0.5 --optimizer adam --eta 0.001 --lmbda 0 --batch-size 64 --expand 2 --epochs 12 --patience 2"
start=$SECONDS
for s in $seeds; do
  python3 -m tiefnet.cli mnist $recipe --seed "$s" --out "/tmp/ens/seed$s" --no-progress > "/tmp/ens/seed$s.log" 2>&1 &
done
wait
echo "trained seeds $seeds in $((SECONDS - start)) s with: tiefnet mnist $recipe --seed S" | tee "$OUT/ensemble.log"
for s in $seeds; do tail -1 "/tmp/ens/seed$s.log" | tee -a "$OUT/ensemble.log"; done
python3 -m tiefnet.cli ensemble --models $(for s in $seeds; do echo /tmp/ens/seed$s; done) --out "$OUT/vote.json" 2>&1 \
  | tee -a "$OUT/ensemble.log"
for s in $seeds; do cp "/tmp/ens/seed$s/metrics.jsonl" "$OUT/metrics-seed$s.jsonl"; done
