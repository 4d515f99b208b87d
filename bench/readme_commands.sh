#!/usr/bin/env bash
# Every command of README.md, in the order printed, in a fresh clone of the committed HEAD with a new
# virtual environment (issue 10, acceptance 4: "run in order in a fresh folder, works as written").
# Prints one line per command (exit code, seconds, the command) and keeps each command's output in
# LOGDIR/NN.log. Usage (from the project root): bash bench/readme_commands.sh [LOGDIR]
# Commands run as printed; only `pytest -n auto` is what it is, so the whole run takes a while
# (the README gives each long command's time).
set -uo pipefail
top=$(git rev-parse --show-toplevel)
logs=$(realpath -m "${1:-$top/bench/readme_commands_logs}")
work=$(mktemp -d)
git clone -q --no-local "$top" "$work/main"
cd "$work/main"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
mkdir -p "$logs"
echo "fresh clone of $(git rev-parse --short HEAD) in $work/main; $(lscpu | sed -n 's/^Model name: *//p'); logs in $logs"
# the commands of the ```bash blocks, comments and blank lines dropped
mapfile -t commands < <(python3 - <<'EOF'
import re
from pathlib import Path

for block in re.findall(r"```bash\n(.*?)```", Path("README.md").read_text(), flags=re.S):
    for line in block.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            print(command)
EOF
)
failed=0
for i in "${!commands[@]}"; do
    command=${commands[$i]}
    log=$(printf '%s/%02d.log' "$logs" "$((i + 1))")
    start=$(date +%s.%N)
    bash -c "$command" >"$log" 2>&1 </dev/null
    rc=$?
    seconds=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
    printf 'rc %d  %7s s  %s\n' "$rc" "$seconds" "$command"
    tail -n 2 "$log" | sed 's/^/        | /'
    [[ $rc == 0 ]] || failed=$((failed + 1))
done
echo "$failed of ${#commands[@]} commands failed"
rm -rf "$work"
exit $((failed > 0))
