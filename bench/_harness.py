"""The timing harness the bench/ scripts share: the machine, the BLAS kernel, outside load, quiet waits.

A script run as ``python bench/X.py`` has bench/ on ``sys.path``, so ``import _harness`` needs no
path hack. What lives here is what no single benchmark owns:

- **the machine and the run** (:func:`environment`): date, command line, git commit, Python and
  library versions, the CPU model as ``lscpu`` names it, the usable cores, the BLAS libraries
  with the OpenBLAS kernel NumPy really runs (threadpoolctl's ``architecture``), PyTorch's BLAS,
  and the OpenBLAS / thread variables; :func:`announce_environment` prints it and warns.
- **the load** other processes put on the machine: :class:`OutsideLoad` (the CPU share they took
  during a block, from /proc/stat), :func:`quiet_check`, :class:`RunLoad` (the JSON's ``"load"``).
- **timing**: :func:`settle` (idle, then wait for a quiet moment) and :func:`interleave`
  (frameworks or variants timed in turns, best of N and median by :func:`best_of`).
- **reporting**: the command-line options, the markdown preamble, the load summary, JSON files.

OpenBLAS kernel: this environment exports OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE, which
force an older kernel and make NumPy's small float32 GEMMs ~3x slower than the auto-detected one.
The speed benchmarks are meant to be run with both unset, for that one command only
(``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/X.py``; never change them
for tests or CI). Which kernel ran and whether the variables were set is recorded, and
:func:`announce_environment` warns when OPENBLAS_CORETYPE is set.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent  # bench/
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
UNSET_OPENBLAS = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"  # the prefix of every speed command


# ---------------------------------------------------------------------------------------
# The machine and the run
# ---------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` prints it (/proc/cpuinfo, then platform, where it is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            if line.strip().startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_details() -> dict:
    """lscpu's vendor, family, model, stepping and flags (what decides which kernels and variants run)."""
    wanted = {"Vendor ID": "vendor", "CPU family": "family", "Model": "model", "Stepping": "stepping",
              "Flags": "flags", "L1d cache": "l1d", "L2 cache": "l2", "L3 cache": "l3"}
    details = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            name, _, value = line.partition(":")
            if name.strip() in wanted:
                details[wanted[name.strip()]] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return details


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def git_commit() -> str | None:
    """The short commit of the checkout, with ``+dirty`` when tracked files are changed."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def command_line() -> str:
    """How this run was started, relative to the repository root where possible (with the
    ``env -u ...`` prefix when both OpenBLAS variables are unset)."""
    root = HERE.parent
    try:
        script = str(Path(sys.argv[0]).resolve().relative_to(root))
    except ValueError:
        script = sys.argv[0]
    try:
        python = str(Path(sys.executable).relative_to(root))
    except ValueError:
        python = Path(sys.executable).name
    unset = all(os.environ.get(v) is None for v in OPENBLAS_VARS)
    prefix = UNSET_OPENBLAS + " " if unset else ""
    return prefix + " ".join([python, script] + sys.argv[1:])


def numpy_blas() -> list[dict]:
    """NumPy's BLAS libraries as threadpoolctl sees them now (kernel ``architecture``, threads)."""
    import threadpoolctl

    pools = threadpoolctl.threadpool_info()
    return [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer",
                                   "filepath")}
            for p in pools if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")]


def environment(torch: bool = True) -> dict:
    """Date, command, commit, versions, CPU, BLAS libraries (with the OpenBLAS kernel in use) and the
    relevant variables; ``torch=False`` leaves PyTorch out (not imported)."""
    import threadpoolctl

    import tiefnet

    pools = threadpoolctl.threadpool_info()
    blas = numpy_blas()
    versions = {"tiefnet": tiefnet.__version__, "numpy": np.__version__}
    torch_blas = None
    if torch:
        import torch as _torch

        versions["torch"] = _torch.__version__
        match = re.search(r"BLAS_INFO=([^,\s]+)", _torch.__config__.show())
        torch_blas = match.group(1) if match else None
    versions["threadpoolctl"] = threadpoolctl.__version__
    env = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command_line(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_details": cpu_details(),
        "usable_cpus": usable_cpus(),
        "versions": versions,
        "numpy_blas": blas,
        "numpy_openblas_kernel": blas[0].get("architecture") if blas else None,
        "blas_pools": [{k: p.get(k) for k in ("user_api", "internal_api", "prefix", "architecture",
                                              "num_threads")} for p in pools],
    }
    if torch:
        env["torch_blas"] = torch_blas
    env["openblas_env"] = {v: os.environ.get(v) for v in OPENBLAS_VARS}  # None = not set
    env["thread_env"] = {v: os.environ.get(v) for v in THREAD_VARS}
    return env


def announce_environment(recommended: str, torch: bool = True) -> dict:
    """Print the machine, NumPy's OpenBLAS kernel (and torch's BLAS); warn when OPENBLAS_CORETYPE
    forces an old kernel. Returns :func:`environment`'s record."""
    env = environment(torch)
    coretype = env["openblas_env"]["OPENBLAS_CORETYPE"]
    if coretype:
        print(f"WARNING: OPENBLAS_CORETYPE={coretype} is set: numpy runs the {env['numpy_openblas_kernel']} "
              "OpenBLAS kernel, whose small float32 GEMMs are ~3x slower than the auto-detected one.\n"
              f"         For the published numbers run:  {recommended}", file=sys.stderr, flush=True)
    peer = f"; torch {env['versions']['torch']} (BLAS {env['torch_blas']})" if torch else ""
    print(f"{env['cpu']}, {env['usable_cpus']} cores; numpy {env['versions']['numpy']} OpenBLAS kernel "
          f"{env['numpy_openblas_kernel']}; OpenBLAS vars {env['openblas_env']}{peer}", flush=True)
    return env


# ---------------------------------------------------------------------------------------
# Outside load
# ---------------------------------------------------------------------------------------
def _busy_seconds() -> float:
    """CPU seconds all processes on the machine have spent busy since boot (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:  # pragma: no cover - not Linux
        return float("nan")
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal (not guest: in user)
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and of its child processes, live (tiefnet's data-parallel workers,
    fit's evaluation of an epoch) or ended: their work is the benchmark's, not outside load."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + _live_children_seconds()


def _live_children_seconds() -> float:
    """utime + stime of every live descendant process (/proc/PID/task/PID/children, recursively)."""
    total, stack, tick = 0.0, [os.getpid()], os.sysconf("SC_CLK_TCK")
    while stack:
        pid = stack.pop()
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:  # not Linux, or gone
            continue
        for kid in kids:
            try:
                fields = Path(f"/proc/{kid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            stack.append(int(kid))
    return total


class OutsideLoad:
    """Measures the CPU share other processes took during a block (0 = quiet, 1 = all cores busy).

    ``share = (machine busy CPU seconds - this process's CPU seconds) / (wall * cores)``;
    /proc/stat counts in 10 ms ticks, so short blocks are only roughly measured.
    """

    def __enter__(self):
        self._t, self._busy, self._own = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t
        others = (_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        self.wall = wall
        self.share = max(0.0, others) / (wall * usable_cpus()) if wall > 0 else float("nan")
        return False


def quiet_check(seconds: float = 1.0) -> float:
    """Outside CPU share while this process sleeps for ``seconds``."""
    with OutsideLoad() as load:
        time.sleep(seconds)
    return load.share


@dataclass
class QuietWait:
    """How :func:`settle` waits for a quiet moment (set from the command line by :func:`apply_quiet_options`)."""

    threshold: float = 0.15  # wait while other processes take more than this share of the CPU
    max_wait: float = 20.0  # but at most this many seconds before one timed block
    waited: float = 0.0  # seconds waited so far in this run (reported in the JSON's "load")


QUIET = QuietWait()


def settle(pause: float) -> bool:
    """Idle before a timed block: idle BLAS / OpenMP threads of the previous framework stop
    spinning, and, while other processes take more than ``QUIET.threshold`` of the CPU, wait
    (at most ``QUIET.max_wait`` seconds) for a quieter moment. True when the moment was quiet."""
    gc.collect()
    start = time.perf_counter()
    while True:
        with OutsideLoad() as load:
            time.sleep(pause)
        waited = time.perf_counter() - start - pause
        if load.share <= QUIET.threshold or waited >= QUIET.max_wait:
            break
    QUIET.waited += max(0.0, waited)
    return load.share <= QUIET.threshold


class RunLoad:
    """The load around a whole run, as the JSON's ``"load"`` (``record``): loadavg and a 1 s quiet
    check at the start (printed), then at the end the loadavg, the outside CPU share over the run,
    its seconds and the seconds :func:`settle` waited for quiet moments."""

    def __enter__(self):
        self.record = {"loadavg_start": list(os.getloadavg()), "outside_share_idle_check": quiet_check(1.0)}
        print(f"loadavg {self.record['loadavg_start'][0]:.2f}; other processes use "
              f"{self.record['outside_share_idle_check']:.0%} of the CPU right now", flush=True)
        self._started = time.perf_counter()
        self._whole = OutsideLoad().__enter__()
        return self

    def __exit__(self, *exc):
        self._whole.__exit__(*exc)
        self.record.update(loadavg_end=list(os.getloadavg()), outside_share_whole_run=self._whole.share,
                           run_seconds=time.perf_counter() - self._started, seconds_waited_for_quiet=QUIET.waited,
                           quiet_threshold=QUIET.threshold)
        return False


# ---------------------------------------------------------------------------------------
# Timing in turns
# ---------------------------------------------------------------------------------------
def _timed(block: Callable[[], float]) -> dict:
    with OutsideLoad() as load:
        seconds = block()
    return {"seconds": seconds, "outside_load": round(load.share, 3)}


def interleave(blocks: dict[str, Callable[[], float]], repeats: int, pause: float, label: str,
               unit: str = "epoch", digits: int = 4, extra: int = 0) -> dict[str, list[dict]]:
    """Time every block ``repeats`` times in turns (a, b, a, b, ...), each after :func:`settle`, so
    that a burst of outside load hits all of them; then a block whose best run so far was under
    outside load gets up to ``extra`` more runs, each only after a quiet moment.

    ``blocks`` maps a name to a function that runs one timed block and returns its seconds.
    Returns ``{name: [{"seconds", "outside_load"(, "extra": True)}, ...]}``; progress is printed
    as ``{label} {unit} r/repeats {name} ...``."""
    runs: dict[str, list[dict]] = {name: [] for name in blocks}
    for r in range(repeats):
        for name, block in blocks.items():
            settle(pause)
            run = _timed(block)
            runs[name].append(run)
            print(f"  {label} {unit} {r + 1}/{repeats} {name:<7} {run['seconds']:8.{digits}f} s"
                  f"   (outside load {run['outside_load']:4.0%})", flush=True)
    for name, block in blocks.items():
        for k in range(extra):
            if min(runs[name], key=lambda e: e["seconds"])["outside_load"] <= QUIET.threshold:
                break
            if not settle(pause):
                print(f"  {label} {name}: no quiet moment in {QUIET.max_wait:g} s, no (more) extra {unit}s",
                      flush=True)
                break
            run = {**_timed(block), "extra": True}
            runs[name].append(run)
            print(f"  {label} extra {unit} {k + 1}/{extra} {name:<7} {run['seconds']:8.{digits}f} s"
                  f"   (outside load {run['outside_load']:4.0%}; the best so far ran under load)", flush=True)
    return runs


def alternate_steps(ours: Callable[[], float], theirs: Callable[[], float], steps: int, rounds: int,
                    idle: float = 0.5, wake: int = 2) -> tuple[list[float], list[float]]:
    """Time two step functions (each returns its own seconds) in ``rounds`` alternating blocks of
    ``steps`` timed steps, after two warm-up steps each. Every block follows a pause of ``idle``
    seconds and ``wake`` untimed steps: PyTorch's OpenMP threads keep spinning for a while after a
    parallel region (KMP_BLOCKTIME) and would take a core from a step that followed at once; the
    untimed steps wake the other's threads. Returns (our times, their times)."""
    for _ in range(2):  # warm-up
        ours(), theirs()
    times_ours: list[float] = []
    times_theirs: list[float] = []
    for _ in range(rounds):
        for step, times in ((ours, times_ours), (theirs, times_theirs)):
            time.sleep(idle)
            for _ in range(wake):
                step()
            times.extend(step() for _ in range(steps))
    return times_ours, times_theirs


def read_run(out: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """A finished `tiefnet mnist` run folder: its metrics.jsonl (each epoch without the seconds) and
    the arrays of its model.npz, to compare two runs bit for bit with :func:`same_run`."""
    out = Path(out)
    metrics = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (out / "metrics.jsonl").read_text().splitlines()]
    with np.load(out / "model.npz", allow_pickle=False) as model:
        arrays = {key: model[key].copy() for key in model.files}
    return metrics, arrays


def same_run(a: tuple[list[dict], dict], b: tuple[list[dict], dict]) -> bool:
    """Whether two :func:`read_run` results are identical: every metric, every array bit for bit."""
    return a[0] == b[0] and a[1].keys() == b[1].keys() and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def openblas_kernels(env: dict) -> list[str]:
    """The OpenBLAS kernels (architectures) that :func:`environment` found loaded."""
    return [p["architecture"] for p in env["blas_pools"] if p["internal_api"] == "openblas"]


def best_of(runs: list[dict]) -> dict:
    """The best (fastest) and median seconds of :func:`interleave`'s runs of one block: outside
    load only ever makes a run slower, so the best counts."""
    best = min(runs, key=lambda e: e["seconds"])
    return {"best_seconds": best["seconds"], "median_seconds": float(np.median([e["seconds"] for e in runs])),
            "outside_load_at_best": best["outside_load"], "epochs": runs}


# ---------------------------------------------------------------------------------------
# Command line and reports
# ---------------------------------------------------------------------------------------
def benchmark_parser(doc: str, recommended: str) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of ``doc`` (the script's docstring) and
    whose epilog names the ``recommended`` command."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=f"Recommended:\n  {recommended}")


def add_quiet_options(parser, pause: float = 0.3, max_wait: float = 20.0) -> None:
    """--pause, --quiet-threshold, --max-wait (see :func:`settle`)."""
    parser.add_argument("--pause", type=float, default=pause, help="seconds of idle before each timed block")
    parser.add_argument("--quiet-threshold", type=float, default=0.15,
                        help="before each timed block, wait while other processes use more than this share "
                             "of the CPU (default 0.15; 1 disables waiting)")
    parser.add_argument("--max-wait", type=float, default=max_wait,
                        help=f"longest wait for a quiet moment before one timed block, seconds (default {max_wait:g})")


def apply_quiet_options(args) -> None:
    """Set :data:`QUIET` from the options of :func:`add_quiet_options`; a new run has waited 0 s."""
    QUIET.threshold, QUIET.max_wait, QUIET.waited = args.quiet_threshold, args.max_wait, 0.0


def add_output_options(parser, markdown: bool = True) -> None:
    """--json PATH (and --markdown)."""
    parser.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    if markdown:
        parser.add_argument("--markdown", action="store_true", help="print tables ready for bench/RESULTS.md")


def counts(text: str) -> list[int]:
    """An argparse ``type``: ``"1,2"`` -> [1, 2], comma-separated positive integers."""
    try:
        values = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive integers")
    return values


def add_threads_option(parser) -> None:
    """--threads 1,2: the BLAS / intra-op thread counts, parsed by :func:`counts`."""
    parser.add_argument("--threads", type=counts, default=[1, 2], help="comma-separated thread counts (default 1,2)")


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    """"yes" when ``value`` meets ``target``, else "NO"."""
    good = value >= target if higher_is_better else value <= target
    return "yes" if good else "NO"


def markdown_preamble(results: dict, timed: str, load_note: str = "") -> list[str]:
    """The lines every speed report starts with: machine, versions and kernel; the OpenBLAS
    variables and ``timed`` (what was timed, how); the load (+ ``load_note``); the quick-mode and
    kernel warnings; the command."""
    env, load = results["environment"], results["load"]
    set_vars = {k: v for k, v in env["openblas_env"].items() if v is not None}
    peer = f", PyTorch {env['versions']['torch']} (BLAS {env['torch_blas']})" if "torch" in env["versions"] else ""
    lines = [f"Measured {env['date']} on {env['cpu']} ({env['usable_cpus']} usable cores), "
             f"Python {env['python']}, tiefnet {env['versions']['tiefnet']}, NumPy {env['versions']['numpy']} "
             f"(OpenBLAS kernel **{env['numpy_openblas_kernel']}**){peer}, commit {env['git_commit']}.",
             f"OpenBLAS variables: {', '.join(f'{k}={v}' for k, v in set_vars.items()) if set_vars else 'none set'}. "
             + timed,
             f"Load: loadavg {load['loadavg_start'][0]:.2f} at start, {load['loadavg_end'][0]:.2f} at end; "
             f"other processes used {load['outside_share_idle_check']:.0%} of the CPU in a 1 s check "
             f"before the run and {load['outside_share_whole_run']:.0%} over the whole run "
             f"({load['seconds_waited_for_quiet']:.0f} s spent waiting for quiet moments){load_note}."]
    if results.get("quick"):
        lines.append("**QUICK MODE (smoke test, subset of the data): not for RESULTS.md.**")
    if set_vars.get("OPENBLAS_CORETYPE"):
        lines.append(f"**Warning: OPENBLAS_CORETYPE={set_vars['OPENBLAS_CORETYPE']} forced an older kernel.**")
    return lines + ["", f"Command: `{env['command']}`", ""]


def load_summary(load: dict) -> str:
    """One plain-text line: loadavg and the outside CPU share before and during the run."""
    return (f"load: loadavg {load['loadavg_start'][0]:.2f} -> {load['loadavg_end'][0]:.2f}; outside CPU share "
            f"{load['outside_share_idle_check']:.0%} before, {load['outside_share_whole_run']:.0%} during the run")


def write_json(path: Path | None, results: dict, partial: bool = False) -> None:
    """Write ``results`` to ``path`` (if given); ``partial=True`` marks what a run cut short keeps,
    silently, between the steps of a long run."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "tiefnet.plans" in sys.modules:  # which implementation each site chose, per shape, in this process
        results = {**results, "plans": sys.modules["tiefnet.plans"].chosen()}
    path.write_text(json.dumps({**results, "partial": True} if partial else results, indent=1) + "\n")
    if not partial:
        print(f"\nresults written to {path}")
