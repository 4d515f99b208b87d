#!/usr/bin/env bash
# A longer DQN training on Pong (lecture 5.3; Mnih et al. 2015) with TIEFNET_DEVICE=gpu, within a
# wall-clock budget: `tiefnet dqn train ALE/Pong-v5` in chunks of CHUNK steps, each resumed from the
# run's checkpoint, while the budget leaves time for another chunk (each chunk also runs under
# `timeout`, so the budget holds even when a chunk is slower than the last); then a greedy evaluation.
#   OUT=results-folder bash bench/dqn_pong_gpu.sh [BUDGET_SECONDS] [CHUNK_STEPS]
# Installs nothing from the network (the GPU machine has CuPy; the repository is copied there).
# Pong needs about 10^6 steps (hours) before the return climbs from -21; a short budget only shows
# the speed (steps/s) and that the chunks resume.
set -uo pipefail
BUDGET=${1:-540}
CHUNK=${2:-25000}
OUT=${OUT:-gpu-dqn-pong}
RUN=${RUN:-/tmp/gpu-runs/dqn-pong}
EVAL=${EVAL:-5}
MEMORY=${MEMORY:-200000}  # replay memory N (the lecture: 10^6, 7.1 GB of host RAM and of every checkpoint)
mkdir -p "$OUT"
export TIEFNET_DEVICE=gpu PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 \
  || export PYTHONPATH=$PWD/src
# Mnih et al.'s loop with the settings of common Pong runs: Adam 1e-4, batch 32, one gradient step
# every 4 agent steps, theta^- refreshed every 1000 steps, epsilon 1 -> 0.01 over 250k steps.
recipe="--memory $MEMORY --batch-size 32 --optimizer adam --eta 0.0001 --gamma 0.99 --target-every 1000
  --epsilon-start 1.0 --epsilon-end 0.01 --epsilon-steps 250000 --learning-starts 10000 --train-every 4
  --check-every 0 --checkpoint-every $CHUNK --log-every 5000 --seed 0"
start=$SECONDS
steps=0
chunk_s=0
resume=""
echo "tiefnet dqn train ALE/Pong-v5 $recipe, budget $BUDGET s in chunks of $CHUNK steps" | tee "$OUT/dqn-pong.log"
while true; do
  left=$((BUDGET - (SECONDS - start)))
  # another chunk only if it (as long as the last one, plus 20 %) and the evaluation fit
  if [ "$left" -le $((chunk_s * 6 / 5 + 60)) ]; then break; fi
  chunk_start=$SECONDS
  timeout $((left - 30)) python3 -m tiefnet.cli dqn train ALE/Pong-v5 $recipe --steps $((steps + CHUNK)) \
    --eval-episodes 0 --out "$RUN" --no-progress $resume >> "$OUT/dqn-pong.log" 2>&1
  rc=$?
  chunk_s=$((SECONDS - chunk_start))
  if [ "$rc" -ne 0 ]; then echo "chunk to step $((steps + CHUNK)) stopped (exit $rc) after $chunk_s s" | tee -a "$OUT/dqn-pong.log"; break; fi
  steps=$((steps + CHUNK))
  resume="--resume"
  echo "step $steps after $((SECONDS - start)) s (chunk $chunk_s s)" | tee -a "$OUT/dqn-pong.log"
done
if [ "$steps" -gt 0 ]; then  # resume at the last checkpoint, no training: the greedy evaluation only
  python3 -m tiefnet.cli dqn train ALE/Pong-v5 $recipe --steps "$steps" --eval-episodes "$EVAL" --out "$RUN" \
    --no-progress --resume 2>&1 | tee -a "$OUT/dqn-pong.log" | tail -3
fi
echo "wall time $((SECONDS - start)) s" | tee -a "$OUT/dqn-pong.log"
for f in summary.json metrics.jsonl config.json model.json; do cp "$RUN/$f" "$OUT/" 2>/dev/null; done
ls "$RUN"/*.png >/dev/null 2>&1 && cp "$RUN"/*.png "$OUT/"
