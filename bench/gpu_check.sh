#!/usr/bin/env bash
# The GPU check of the test suite and the main job, on a CUDA machine with CuPy installed:
#   OUT=results-folder bash bench/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export TIEFNET_DEVICE=gpu PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 \
  || export PYTHONPATH=$PWD/src
echo "== test suite (TIEFNET_DEVICE=gpu)"
python3 -m pytest -n 8 -p no:cacheprovider 2>&1 | tee "$OUT/gpu-tests.log" | tail -15
echo "== tiefnet mnist (defaults)"
start=$SECONDS
python3 -m tiefnet.cli mnist --out /tmp/gpu-runs/mnist-default --no-progress 2>&1 | tee "$OUT/gpu-mnist.log"
echo "wall time $((SECONDS - start)) s" | tee -a "$OUT/gpu-mnist.log"
echo "== 784-100-10 cross-entropy, mini-batch 100, 5 epochs"
python3 -m tiefnet.cli mnist --hidden 100 --cost cross-entropy --eta 0.5 --init scaled --batch-size 100 \
  --epochs 5 --out /tmp/gpu-runs/mnist-b100 --no-progress | tail -1
cp /tmp/gpu-runs/mnist-default/summary.json "$OUT/summary-default.json"
cp /tmp/gpu-runs/mnist-default/metrics.jsonl "$OUT/metrics-default.jsonl"
