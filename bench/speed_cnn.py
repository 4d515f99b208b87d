"""Training speed of Nielsen's chapter-6 CNN on MNIST: tiefnet vs PyTorch, in one run.

Run it (the two OpenBLAS variables are unset for this command only; see bench/_harness.py)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/speed_cnn.py --markdown

``--quick`` is a smoke test (5,000 images, 2 repeats, 20 profiled mini-batches);
``--repeats N`` sets how many epochs are timed per framework and thread count (the best one
counts; ``--extra K``: up to K more for a framework whose best epoch ran under outside load);
``--threads 1,2`` the BLAS / intra-op thread counts; ``--json PATH`` saves every number, the
machine and the load; ``--markdown`` prints tables ready for ``bench/RESULTS.md``.

The network (Nielsen ch. 6, two conv-pool layers, ReLU, softmax + log-likelihood)::

    Reshape((1,28,28)) -> Conv2d(1, 20, 5) -> MaxPool2d(2) -> ReLU
      -> Conv2d(20, 40, 5) -> MaxPool2d(2) -> ReLU -> Flatten
      -> Dense(640, 100) -> ReLU -> Dense(100, 10) -> Softmax

trained by plain SGD, eta 0.03, mini-batch 64, on the first 50,000 training images of
``tiefnet.data.load_mnist()`` (float32 in [0, 1]).  The PyTorch peer is the same network
written the way a PyTorch user would (``nn.Conv2d`` / ``F.relu`` / ``F.max_pool2d`` /
``nn.Linear``, ``log_softmax`` + ``nll_loss`` (mean), ``torch.optim.SGD``, ``randperm`` +
slicing), default PyTorch initialisation; tiefnet uses ``init="scaled"``.

1. Epoch time: shuffle + all mini-batch updates, evaluation excluded; tiefnet through the
   public API (``tn.fit(..., epochs=1, monitor_train=False)``, History's ``seconds``),
   called repeatedly on the same network.  tiefnet and PyTorch epochs are interleaved, with
   a pause (and a wait for a quiet moment) before each; the best of N counts and the CPU
   share other processes took during each timed epoch is recorded.  Target: tiefnet/PyTorch
   <= 1.0 at every thread count.
2. GEMM share: the matrix products one tiefnet epoch performs (per mini-batch: for each conv
   layer ``z = cols @ W^T`` and ``dW = d^T cols``, for each dense layer ``z = x @ W^T`` and
   ``dW = d^T x``, and ``d @ W`` for every layer except the first conv layer, whose input
   gradient tiefnet skips), replayed with the real shapes (mini-batch 64, and the last,
   shorter mini-batch) in a tight loop, summed over the epoch and divided by the best epoch
   time.  What is not GEMM is im2col / col2im, pooling, activations, the update, Python.
   The conv GEMMs are replayed as tiefnet runs them at that thread count: where
   ``tiefnet.backend.split_batch`` exists, the mini-batch is cut into one part per thread,
   each on single-threaded BLAS, all at once; otherwise whole, on BLAS's own threads.
3. Where the time goes, for whoever optimises it: per-layer forward / backward seconds over
   a short run (``--profile-batches`` mini-batches, timers around each layer's methods),
   and a cProfile of the same short run, top functions by tottime.  cProfile charges NumPy
   operators and ufuncs (``@``, ``+=``, ``np.matmul(..., out=)``) to the Python function
   that calls them, so a layer method's tottime includes its GEMMs and array arithmetic.
   cProfile follows the main thread only: at 2 threads, the part of each mini-batch that
   tiefnet hands to its other thread shows up as the main thread waiting (``lock.acquire``).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from pathlib import Path

import numpy as np

import tiefnet as tn
from tiefnet.backend import thread_limit
from tiefnet.train import as_data

import _harness  # bench/_harness.py: machine, load, quiet waits, reports
from _harness import OutsideLoad, settle, verdict
from speed_mnist import mnist_data, tiefnet_accuracy

HERE = Path(__file__).resolve().parent
TARGET = 1.0  # tiefnet/PyTorch epoch time, at every thread count
ETA, BATCH = 0.03, 64
ARCH = ("Reshape(1,28,28) - Conv2d(1,20,5) - MaxPool2d(2) - ReLU - Conv2d(20,40,5) - MaxPool2d(2) - ReLU "
        "- Flatten - Dense(640,100) - ReLU - Dense(100,10) - Softmax (tiefnet.vision.cnn.build_cnn: pooling "
        "before the ReLU, the same function as PyTorch's relu-then-pool)")
RECOMMENDED = f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/speed_cnn.py --markdown"
SRC = str(HERE.parent / "src") + os.sep


# ---------------------------------------------------------------------------------------
# The two networks
# ---------------------------------------------------------------------------------------
def build_tiefnet(seed: int):
    from tiefnet.vision.cnn import build_cnn

    rng = np.random.default_rng(seed)
    net = build_cnn(features=(20, 40), kernel=5, hidden=(100,), activation="relu", pool="max", init="scaled", rng=rng)
    return net, tn.LogLikelihood(), tn.SGD(ETA), rng


def tiefnet_epoch(net, loss, opt, rng, train, threads: int) -> float:
    """One tiefnet epoch through the public API; the History's pure training seconds."""
    with thread_limit(threads):
        history = tn.fit(net, loss, opt, train, epochs=1, batch_size=BATCH, rng=rng, monitor_train=False)
    return float(history.epochs[0]["seconds"])


class TorchCNNTrainer:
    """The same CNN in PyTorch, trained one timed epoch per :meth:`epoch` call."""

    def __init__(self, x, labels, seed: int = 0):
        import torch
        import torch.nn.functional as F
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 20, 5)
                self.conv2 = nn.Conv2d(20, 40, 5)
                self.fc1 = nn.Linear(640, 100)
                self.fc2 = nn.Linear(100, 10)

            def forward(self, x):
                x = x.view(-1, 1, 28, 28)
                x = F.max_pool2d(F.relu(self.conv1(x)), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                x = torch.flatten(x, 1)
                x = F.relu(self.fc1(x))
                return F.log_softmax(self.fc2(x), dim=1)

        self.torch, self.F = torch, F
        torch.manual_seed(seed)
        self.X = torch.as_tensor(np.asarray(x), dtype=torch.float32).contiguous()
        self.Y = torch.as_tensor(np.asarray(labels), dtype=torch.int64).contiguous()
        self.model = Net()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=ETA)

    def epoch(self, threads: int) -> float:
        """Train one epoch (``randperm`` shuffle included); return its wall-clock seconds."""
        torch, F = self.torch, self.F
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            X, Y, n, m = self.X, self.Y, self.X.shape[0], BATCH
            model, optimizer = self.model, self.optimizer
            model.train()
            start = time.perf_counter()
            perm = torch.randperm(n)
            X_shuf, Y_shuf = X[perm], Y[perm]
            for i in range(0, n, m):
                xb, yb = X_shuf[i:i + m], Y_shuf[i:i + m]
                optimizer.zero_grad()
                loss = F.nll_loss(model(xb), yb)
                loss.backward()
                optimizer.step()
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(previous)

    def accuracy(self, x, labels) -> float:
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            out = torch.cat([self.model(torch.as_tensor(x[i:i + 500])) for i in range(0, len(x), 500)])
        return float(np.mean(out.argmax(dim=1).numpy() == np.asarray(labels)))


# ---------------------------------------------------------------------------------------
# 1. Interleaved epochs
# ---------------------------------------------------------------------------------------
def compare(data: dict, threads: int, repeats: int, pause: float, seed: int, extra: int = 0) -> dict:
    """Interleaved tiefnet / PyTorch epochs at one thread count; up to ``extra`` more for a framework
    whose best epoch ran under outside load."""
    net, loss, opt, rng = build_tiefnet(seed)
    trainer = TorchCNNTrainer(data["x"], data["labels"], seed=seed)
    epochs = {"tiefnet": lambda: tiefnet_epoch(net, loss, opt, rng, data["train"], threads),
              "torch": lambda: trainer.epoch(threads)}
    runs = _harness.interleave(epochs, repeats, pause, label=f"threads {threads}", digits=3, extra=extra)
    result = {"threads": threads, "epochs": {f: len(e) for f, e in runs.items()},
              **{f: _harness.best_of(e) for f, e in runs.items()}}
    result["tiefnet"]["test_accuracy"] = tiefnet_accuracy(net, data["x_test"], data["labels_test"])
    result["torch"]["test_accuracy"] = trainer.accuracy(data["x_test"], data["labels_test"])
    result["tiefnet_over_torch"] = result["tiefnet"]["best_seconds"] / result["torch"]["best_seconds"]
    return result


# ---------------------------------------------------------------------------------------
# 2. The epoch's GEMMs, replayed
# ---------------------------------------------------------------------------------------
def _split_batch():
    """tiefnet's own way of cutting a mini-batch over its CPU threads, if it has one."""
    from tiefnet import backend

    return getattr(backend, "split_batch", None)


def step_gemms(m: int, rng: np.random.Generator) -> list[tuple[str, object, float]]:
    """(name, thunk, flops) for every matrix product of one tiefnet mini-batch of ``m`` images.

    Operand layouts as in tiefnet (W stored (F, K) / (n_out, n_in) and ``W.T`` a view, ``d^T``
    a view of a C-contiguous (rows, F) delta).  The conv GEMMs run the way tiefnet runs them:
    where ``tiefnet.backend.split_batch`` exists, the mini-batch is cut into parts by it (one
    per thread of ``thread_limit``, each on single-threaded BLAS, all at once); otherwise one
    GEMM over the whole mini-batch on BLAS's own threads.  The dense GEMMs are never split."""
    f32 = np.float32
    split = _split_batch()

    def arr(*shape):
        return rng.standard_normal(shape).astype(f32)

    def per_samples(work, n):
        if split is None:
            return lambda: work(0, n)
        return lambda: split(work, n)

    out = []
    # (name, rows per sample, K, F, input gradient computed?, conv?)
    layers = [("conv1", 24 * 24, 1 * 5 * 5, 20, False, True),  # first trainable layer: no dx
              ("conv2", 8 * 8, 20 * 5 * 5, 40, True, True),
              ("dense1", 1, 640, 100, True, False),
              ("dense2", 1, 100, 10, True, False)]
    for name, per, k, f, dx, conv in layers:
        rows = m * per
        a, w, d, z = arr(rows, k), arr(f, k), arr(rows, f), np.empty((rows, f), f32)
        flops = 2.0 * rows * k * f
        if conv:
            def fwd(lo, hi, a=a, w=w, z=z, per=per):
                np.matmul(a[lo * per:hi * per], w.T, out=z[lo * per:hi * per])

            def dW(lo, hi, a=a, d=d, per=per):  # as tiefnet: (Q R C, F) = cols^T d
                a[lo * per:hi * per].T @ d[lo * per:hi * per]

            w_offsets = [np.ascontiguousarray(w[:, i::25]) for i in range(25)]  # (F, C) per filter offset

            def da(lo, hi, d=d, per=per, w_offsets=w_offsets):  # as tiefnet: one GEMM per offset
                for w_qr in w_offsets:
                    d[lo * per:hi * per] @ w_qr

            # conv1 is the first trainable layer: tiefnet computes its dW as one GEMM, unsplit
            thunks = [per_samples(fwd, m), (lambda: dW(0, m)) if not dx else per_samples(dW, m),
                      per_samples(da, m)]
        else:
            g = np.empty((f, k), f32)
            thunks = [lambda a=a, w=w: a @ w.T, lambda a=a, d=d, g=g: np.matmul(d.T, a, out=g),
                      lambda d=d, w=w: d @ w]
        out.append((f"{name} z = a @ W^T ({rows}x{k} @ {k}x{f})", thunks[0], flops))
        out.append((f"{name} dW = d^T a ({f}x{rows} @ {rows}x{k})", thunks[1], flops))
        if dx:
            out.append((f"{name} da = d @ W ({rows}x{f} @ {f}x{k})", thunks[2], flops))
    return out


def _best_time(fn, budget: float = 0.05, blocks: int = 5) -> float:
    """Best seconds per call of ``fn`` over ``blocks`` blocks of ~``budget`` seconds each."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    reps = max(3, int(budget / once))
    best = float("inf")
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def epoch_gemms(n: int, threads: int, seed: int, budget: float) -> dict:
    """Seconds and FLOPs of one epoch's GEMMs: full mini-batches + the last, shorter one."""
    rng = np.random.default_rng(seed)
    full, rest = divmod(n, BATCH)
    per_gemm, seconds, flops = [], 0.0, 0.0
    with thread_limit(threads):
        for m, count in ((BATCH, full), (rest, 1)):
            if not m or not count:
                continue
            for name, fn, f in step_gemms(m, rng):
                t = _best_time(fn, budget)
                seconds += count * t
                flops += count * f
                if m == BATCH:
                    per_gemm.append({"gemm": name, "microseconds": t * 1e6, "gflops": f / t / 1e9,
                                     "epoch_seconds": count * t})
    mode = ("conv GEMMs split over the threads by tiefnet.backend.split_batch, single-threaded BLAS"
            if _split_batch() is not None else "whole GEMMs on BLAS's threads")
    return {"threads": threads, "mode": mode, "full_batches": full, "last_batch": rest, "seconds": seconds,
            "flops": flops, "gflops": flops / seconds / 1e9, "per_gemm": per_gemm}


# ---------------------------------------------------------------------------------------
# 3. Per-layer times and cProfile of a short run
# ---------------------------------------------------------------------------------------
def _short_run(data: dict, batches: int):
    idx = np.arange(min(batches * BATCH, len(data["labels"])))
    return as_data((data["x"][idx], data["labels"][idx]), 10)


def layer_times(data: dict, threads: int, batches: int, seed: int) -> dict:
    """Seconds in each layer's forward and backward (and the SGD step) over a short fit;
    the rest is the shuffle, gathering the mini-batches, the loss's delta and Python."""
    net, loss, opt, rng = build_tiefnet(seed)
    short = _short_run(data, batches)
    tiefnet_epoch(net, loss, opt, rng, short, threads)  # warm-up (allocations, BLAS threads)
    totals: dict[str, float] = {}

    def timed(fn, key):
        totals[key] = 0.0

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[key] += time.perf_counter() - start
        return wrapper

    names = []
    for i, layer in enumerate(net.layers):
        name = f"{i:>2} {layer.describe() if hasattr(layer, 'describe') else type(layer).__name__}"
        names.append(name)
        layer.forward = timed(layer.forward, (name, "forward"))
        layer.backward = timed(layer.backward, (name, "backward"))
    opt.step = timed(opt.step, ("SGD step", "step"))
    try:
        settle(0.3)
        with OutsideLoad() as load:
            seconds = tiefnet_epoch(net, loss, opt, rng, short, threads)
    finally:
        for layer in net.layers:
            del layer.forward, layer.backward
        del opt.step
    rows = []
    for name in names:
        f, b = totals[(name, "forward")], totals[(name, "backward")]
        rows.append({"layer": name, "forward_seconds": f, "backward_seconds": b, "share": (f + b) / seconds})
    step = totals[("SGD step", "step")]
    rows.append({"layer": "SGD step", "forward_seconds": 0.0, "backward_seconds": step, "share": step / seconds})
    rest = seconds - sum(r["forward_seconds"] + r["backward_seconds"] for r in rows)
    rows.append({"layer": "rest (shuffle, gather, loss delta, Python)", "forward_seconds": 0.0,
                 "backward_seconds": rest, "share": rest / seconds})
    return {"threads": threads, "batches": len(short) // BATCH, "seconds": seconds,
            "outside_load": round(load.share, 3), "rows": rows}


def _where(key: tuple) -> str:
    filename, line, func = key
    if filename == "~":
        return func  # a built-in, e.g. <method 'argmax' of 'numpy.ndarray' objects>
    short = filename[len(SRC):] if filename.startswith(SRC) else Path(filename).name
    return f"{short}:{line}({func})"


def profile(data: dict, threads: int, batches: int, seed: int, top: int) -> dict:
    """cProfile of a short fit (after one unprofiled warm-up): top functions by tottime."""
    net, loss, opt, rng = build_tiefnet(seed)
    short = _short_run(data, batches)
    tiefnet_epoch(net, loss, opt, rng, short, threads)  # warm-up
    settle(0.3)
    prof = cProfile.Profile()
    with OutsideLoad() as load:
        prof.enable()
        seconds = tiefnet_epoch(net, loss, opt, rng, short, threads)
        prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    ranked = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    rows = [{"function": _where(key), "ncalls": nc, "tottime": tt, "share": tt / total, "cumtime": ct}
            for key, (cc, nc, tt, ct, _callers) in ranked]
    return {"threads": threads, "batches": len(short) // BATCH, "epoch_seconds_profiled": seconds,
            "total_tottime": total, "outside_load": round(load.share, 3), "top": rows}


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    lines = _harness.markdown_preamble(
        results, f"Training set: first {results['n_train']:,} MNIST images; best of {results['repeats']} epochs "
                 f"(tiefnet and PyTorch interleaved; up to {results['extra']} more for a framework whose best "
                 "epoch ran under outside load), evaluation excluded.")
    lines.append(f"**CNN (Nielsen ch. 6): {ARCH}; log-likelihood, SGD eta {ETA}, mini-batch {BATCH}** "
                 f"(target: tiefnet/PyTorch <= {TARGET:g} at every thread count)")
    lines.append("")
    lines.append("| threads | tiefnet s/epoch | PyTorch s/epoch | tiefnet/PyTorch | outside load at best (tiefnet / PyTorch) "
                 "| tiefnet GEMMs s/epoch (replayed) | GEMM share of tiefnet epoch | test acc. tiefnet / PyTorch |")
    lines.append("|---:|---:|---:|---:|---|---:|---:|---|")
    for r in results["runs"]:
        tnf, tor, g = r["tiefnet"], r["torch"], r.get("gemms")
        gs = f"{g['seconds']:.2f} ({g['gflops']:.0f} GFLOP/s)" if g else "-"
        share = f"{r['gemm_share']:.0%}" if g else "-"
        lines.append(f"| {r['threads']} | {tnf['best_seconds']:.2f} | {tor['best_seconds']:.2f} | "
                     f"{r['tiefnet_over_torch']:.2f} ({verdict(r['tiefnet_over_torch'], TARGET, False)}) | "
                     f"{tnf['outside_load_at_best']:.0%} / {tor['outside_load_at_best']:.0%} | {gs} | {share} | "
                     f"{tnf['test_accuracy']:.2%} / {tor['test_accuracy']:.2%} |")
    lines.append("")
    lines.append(f"Test accuracy after the {results['repeats']} timed epochs (tiefnet init 'scaled', PyTorch its "
                 "default init). GEMMs replayed: forward and dW of every conv / dense layer, d @ W of all but "
                 "the first conv layer, real shapes, tight loop; share = their epoch total / tiefnet's best epoch.")
    lines.append("")
    for g in (r["gemms"] for r in results["runs"] if r.get("gemms")):
        lines.append(f"<details><summary>GEMMs of one mini-batch of {BATCH}, threads {g['threads']}</summary>")
        lines.append("")
        lines.append("| GEMM | µs | GFLOP/s | s per epoch |")
        lines.append("|---|---:|---:|---:|")
        for p in g["per_gemm"]:
            lines.append(f"| {p['gemm']} | {p['microseconds']:.0f} | {p['gflops']:.1f} | {p['epoch_seconds']:.3f} |")
        lines.append("")
        lines.append("</details>")
        lines.append("")
    for lt in results.get("layer_times", []):
        lines.append(f"**Per-layer time, tiefnet, {lt['batches']} mini-batches, threads {lt['threads']}** "
                     f"({lt['seconds']:.3f} s, outside load {lt['outside_load']:.0%})")
        lines.append("")
        lines.append("| layer | forward s | backward s | share |")
        lines.append("|---|---:|---:|---:|")
        for row in lt["rows"]:
            lines.append(f"| {row['layer']} | {row['forward_seconds']:.3f} | {row['backward_seconds']:.3f} | "
                         f"{row['share']:.0%} |")
        lines.append("")
    for pr in results.get("profiles", []):
        lines.append(f"**cProfile, tiefnet, {pr['batches']} mini-batches, threads {pr['threads']}: top "
                     f"{len(pr['top'])} by tottime** (total {pr['total_tottime']:.3f} s under the profiler, "
                     f"outside load {pr['outside_load']:.0%}; NumPy operators and ufuncs count in their caller)")
        lines.append("")
        lines.append("| function | ncalls | tottime s | share | cumtime s |")
        lines.append("|---|---:|---:|---:|---:|")
        for row in pr["top"]:
            fn = row["function"].replace("|", "\\|")
            lines.append(f"| `{fn}` | {row['ncalls']} | {row['tottime']:.3f} | {row['share']:.1%} | "
                         f"{row['cumtime']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def summary(results: dict) -> str:
    out = []
    for r in results["runs"]:
        g = f"; GEMMs {r['gemms']['seconds']:.2f} s = {r['gemm_share']:.0%} of the tiefnet epoch" if r.get("gemms") else ""
        out.append(f"threads {r['threads']}: tiefnet {r['tiefnet']['best_seconds']:.2f} s, PyTorch "
                   f"{r['torch']['best_seconds']:.2f} s, tiefnet/PyTorch {r['tiefnet_over_torch']:.2f}{g}; test acc "
                   f"{r['tiefnet']['test_accuracy']:.2%} / {r['torch']['test_accuracy']:.2%}")
    for pr in results.get("profiles", []):
        out.append(f"cProfile, threads {pr['threads']}, {pr['batches']} mini-batches, top by tottime:")
        for row in pr["top"]:
            out.append(f"  {row['tottime']:8.3f} s {row['share']:6.1%} {row['ncalls']:>7}  {row['function']}")
    out.append(_harness.load_summary(results["load"]))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = _harness.benchmark_parser(__doc__, RECOMMENDED)
    p.add_argument("--quick", action="store_true", help="smoke test: 5,000 images, 2 repeats, 20 profiled batches")
    p.add_argument("--repeats", type=int, default=None, help="timed epochs per framework and thread count "
                   "(best counts; default 3, quick 2)")
    _harness.add_threads_option(p)
    p.add_argument("--n-train", type=int, default=None, help="training images (default 50000, quick 5000)")
    p.add_argument("--profile-batches", type=int, default=None,
                   help="mini-batches in the per-layer timing and the cProfile run (default 100, quick 20)")
    p.add_argument("--profile-top", type=int, default=15, help="functions listed from the cProfile (default 15)")
    p.add_argument("--no-profile", action="store_true", help="skip the per-layer times and the cProfile")
    _harness.add_quiet_options(p)
    p.add_argument("--extra", type=int, default=None,
                   help="extra epochs (at most) for a framework whose best epoch ran while other processes "
                        "used more than --quiet-threshold of the CPU (default 3, quick 0)")
    p.add_argument("--seed", type=int, default=0)
    _harness.add_output_options(p)
    args = p.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.extra = (0 if args.quick else 3) if args.extra is None else args.extra
    args.n_train = args.n_train or (5_000 if args.quick else 50_000)
    args.profile_batches = args.profile_batches or (20 if args.quick else 100)
    if args.repeats < 1 or args.extra < 0 or not BATCH <= args.n_train <= 50_000 or args.profile_batches < 1:
        p.error(f"--repeats and --profile-batches must be >= 1 and --n-train in {BATCH}..50000")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    _harness.apply_quiet_options(args)
    env = _harness.announce_environment(RECOMMENDED)

    n = args.n_train
    data = mnist_data(n)
    data["train"] = as_data((data["x"], data["labels"]), 10)

    with _harness.RunLoad() as run_load:
        results = {"quick": n < 50_000 or args.quick, "n_train": n, "repeats": args.repeats, "extra": args.extra,
                   "threads": args.threads,
                   "batch_size": BATCH, "eta": ETA, "architecture": ARCH, "target_tiefnet_over_torch": TARGET,
                   "environment": env, "runs": []}
        print(f"CNN, log-likelihood, eta {ETA}, batch {BATCH}, {n} images", flush=True)
        for t in args.threads:
            run = compare(data, t, args.repeats, args.pause, args.seed, args.extra)
            settle(args.pause)
            with OutsideLoad() as gemm_load:
                g = epoch_gemms(n, t, args.seed, budget=0.02 if args.quick else 0.05)
            g["outside_load"] = round(gemm_load.share, 3)
            run["gemms"], run["gemm_share"] = g, g["seconds"] / run["tiefnet"]["best_seconds"]
            print(f"  threads {t}: tiefnet/PyTorch {run['tiefnet_over_torch']:.2f}; replayed GEMMs "
                  f"{g['seconds']:.2f} s/epoch ({g['gflops']:.1f} GFLOP/s) = {run['gemm_share']:.0%} of the "
                  f"tiefnet epoch", flush=True)
            results["runs"].append(run)
            _harness.write_json(args.json, results, partial=True)  # a run cut short keeps what it has
        if not args.no_profile:
            results["layer_times"], results["profiles"] = [], []
            for t in args.threads:
                results["layer_times"].append(layer_times(data, t, args.profile_batches, args.seed))
                results["profiles"].append(profile(data, t, args.profile_batches, args.seed, args.profile_top))
                print(f"  threads {t}: per-layer times and cProfile of {args.profile_batches} mini-batches done",
                      flush=True)
    results["load"] = run_load.record

    print()
    print(markdown(results) if args.markdown else summary(results))
    _harness.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
