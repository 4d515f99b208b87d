#!/usr/bin/env bash
# Issue 15, acceptance 3: two `tiefnet hpsearch` workers share one study on a real PostgreSQL server
# (a throw-away one, tests/postgres_server.py), then a worker is killed with SIGKILL mid-trial and the
# next worker finds its trial failed and trains its settings again. Prints the study's trials by state.
#   bash bench/hpsearch_postgres.sh        (from the project root, with .venv holding tiefnet[test])
set -u
cd "$(dirname "$0")/.."
work=$(mktemp -d)
url=$(python3 tests/postgres_server.py start "$work/server") || exit 1
trap 'python3 tests/postgres_server.py stop "$work/server"; rm -rf "$work"' EXIT
study=accept-$(date +%s); T=".venv/bin/python -m tiefnet.cli"
mkdir -p "$work/w"
$T hpsearch --storage "$url" --study $study --seed 3 --space "eta=log:0.05..10" "lmbda=log:1e-3..10" "hidden=int:10..60" \
   --fixed epochs=3 train_size=2000 --trials 30 --startup 4 --no-progress --out $work/w/a > $work/w/a.log 2> $work/w/a.err &
a=$!
while [ ! -f $work/w/a/search.json ]; do sleep 0.2; done
$T hpsearch --storage "$url" --study $study --no-progress --out $work/w/b > $work/w/b.log 2> $work/w/b.err
b_rc=$?
wait $a; echo "worker a rc $?, worker b rc $b_rc"; echo "stderr a:"; cat $work/w/a.err; echo "stderr b:"; cat $work/w/b.err
.venv/bin/python - "$url" $study <<'PY'
import sys, collections, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
trials = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1]).get_trials()
states = collections.Counter(t.state.name for t in trials)
trained = [tuple(sorted(t.params.items())) for t in trials if t.state.name in ("COMPLETE","PRUNED") and "duplicate_of" not in t.user_attrs]
print("trials", len(trials), dict(states), "trained settings", len(trained), "distinct", len(set(trained)),
      "duplicates skipped", sum("duplicate_of" in t.user_attrs for t in trials))
PY
echo "trial folders: a $(ls $work/w/a/trials | wc -l), b $(ls $work/w/b/trials | wc -l)"
# SIGKILL a worker mid-trial, then a second worker picks the study up
study2=killed-$(date +%s)
$T hpsearch --storage "$url" --study $study2 --seed 4 --space "eta=log:0.5..5" --fixed epochs=30 train_size=5000 --trials 2 --heartbeat 2 --no-progress --out $work/w/k > /dev/null 2>&1 &
k=$!
while [ ! -f $work/w/k/trials/00000/metrics.jsonl ]; do sleep 0.2; done
sleep 1; kill -9 $k; wait $k 2>/dev/null; echo "killed worker (SIGKILL) mid-trial 0"
sleep 5
$T hpsearch --storage "$url" --study $study2 --heartbeat 2 --no-progress --out $work/w/k2 > $work/w/k2.log 2>&1; echo "next worker rc $?"
tail -5 $work/w/k2.log
.venv/bin/python - "$url" $study2 <<'PY'
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
for t in optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1]).get_trials():
    print(t.number, t.state.name, t.params, {k: v for k, v in t.system_attrs.items() if "retr" in k} or "")
PY
