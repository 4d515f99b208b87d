#!/usr/bin/env bash
# Issue 9, acceptance 1: the outputs of the applications for one seed, to compare two versions of the
# code with bench/compare_runs.py (timings aside they must be equal).
#   bench/same_outputs.sh SRC DST     SRC: a tiefnet source tree (e.g. a worktree's src/), DST: output folder
# e.g.  git worktree add /tmp/old 42af797 && bench/same_outputs.sh /tmp/old/src /tmp/before
#       bench/same_outputs.sh "$PWD/src" /tmp/after && .venv/bin/python bench/compare_runs.py /tmp/before /tmp/after
set -u
SRC=$(realpath "$1"); DST=$2
PY=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}  # (not realpath: the venv is found through its link)
mkdir -p "$DST"; cd "$DST" || exit 1
T() { PYTHONPATH="$SRC" "$PY" -c "import sys; from tiefnet.cli import main; sys.exit(main())" "$@"; }
T mnist --epochs 2 --out mnist --no-progress > mnist.log 2>&1
T mnist --model cnn --epochs 1 --train-size 5000 --out cnn --no-progress > cnn.log 2>&1
T charrnn train --steps 50 --out charrnn --no-progress > charrnn.log 2>&1
T dqn CartPole-v1 --steps 5000 --out dqn --no-progress > dqn.log 2>&1
T qlearn > qlearn.txt 2>qlearn.err
T qlearn --json > qlearn.json 2>>qlearn.err
T qlearn --out qlearn_out --no-progress > qlearn_out.txt 2>>qlearn.err
T gridworld --json > gridworld.json 2>gridworld.err
T gridworld > gridworld.txt 2>>gridworld.err
T gridworld --method policy --json > gridworld_policy.json 2>>gridworld.err
T dqn CartPole-v1 --steps 5000 --out dqn_resume --no-progress --checkpoint-every 2000 > dqn_r1.log 2>&1
echo done > DONE
