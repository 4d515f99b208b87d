#!/usr/bin/env bash
# AlphaZero Connect Four trained on a CUDA machine with CuPy (issue 11: "where the device is lent, a
# bench script trains Connect Four there"): f_theta's forward passes and training steps on the GPU
# (TIEFNET_DEVICE=gpu), MCTS on the CPU cores, 8 self-play workers by default.
#   OUT=results-folder MINUTES=8 WORKERS=8 bash bench/alphazero_connect4_gpu.sh
# Not run yet: no GPU machine was lent to the task that wrote it.
set -uo pipefail
OUT=${OUT:-alphazero-gpu}
MINUTES=${MINUTES:-8}
WORKERS=${WORKERS:-8}
mkdir -p "$OUT"
export TIEFNET_DEVICE=gpu PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 \
  || export PYTHONPATH=$PWD/src
start=$SECONDS
python3 -m tiefnet.cli alphazero train connect4 --out /tmp/gpu-runs/c4 --overwrite --workers "$WORKERS" \
  --games-per-generation 256 --parallel-games 64 --max-minutes "$MINUTES" --generations 1000 --no-progress \
  2>&1 | tee "$OUT/alphazero-c4.log"
echo "wall time $((SECONDS - start)) s" | tee -a "$OUT/alphazero-c4.log"
cp /tmp/gpu-runs/c4/metrics.jsonl /tmp/gpu-runs/c4/summary.json /tmp/gpu-runs/c4/curves.png "$OUT/" 2>/dev/null
python3 -m tiefnet.cli alphazero arena /tmp/gpu-runs/c4 mcts --games 20 --simulations 400 --mcts-simulations 1000 \
  | tee "$OUT/alphazero-c4-arena.log"
