"""Training speed on MNIST: tiefnet vs PyTorch vs Nielsen's per-sample loop, in one run.

Run it (the two OpenBLAS variables are unset for this command only; see below)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/speed_mnist.py \\
        --json bench/speed_mnist.json --markdown

``--quick`` is a smoke test (10,000 images, 2 repeats, smaller GEMM); ``--repeats N`` sets
how many epochs are timed per framework and thread count (the best one counts);
``--threads 1,2`` the BLAS / intra-op thread counts; ``--json PATH`` saves every number,
the machine and the load; ``--markdown`` prints tables ready for ``bench/RESULTS.md``.

All frameworks train on the same data, the first 50,000 training images of
``tiefnet.data.load_mnist()`` (float32 in [0, 1]), and are timed per epoch: shuffle +
all mini-batch updates, evaluation excluded.  The best of N epochs counts (other
processes on this 2-core machine only ever make an epoch slower).  tiefnet and PyTorch
epochs are interleaved (tiefnet, pause, torch, pause, ...) so that a burst of outside
load hits both, and the CPU time other processes used during every timed epoch is
recorded (from /proc/stat) next to it.

A. lecture default 784-30-10, sigmoid, quadratic cost, eta 3.0, mini-batch 10:
   tiefnet vs PyTorch (same thread count) vs Nielsen's per-sample NumPy loop
   (bench/nielsen_network.py, float64, thread-independent: timed ``--nielsen-repeats``
   times).  Targets: tiefnet/torch <= 0.25, Nielsen/tiefnet >= 15x.
B. 784-100-10, sigmoid, cross-entropy, eta 0.5, mini-batch 100: tiefnet vs PyTorch.
   Target: tiefnet/torch <= 0.8.
C. share of the float32 GEMM peak reached by tiefnet in B: the FLOPs of one epoch
   (forward x W^T of both layers, dW of both layers, dx of layer 2 only; elementwise
   work ignored) divided by the epoch time, against the best rate numpy's BLAS reaches
   on a large square float32 product (2048^3), per thread count.

OpenBLAS kernel: the environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force an older, ~3x
slower kernel for small float32 GEMMs, hence ``env -u ...`` for this command only; the kernel
that ran is recorded and a warning printed when one is forced (see bench/_harness.py, which
also holds the machine description, the outside-load measurement and the quiet waits).
"""

from __future__ import annotations

import time

import numpy as np

import tiefnet as tn
from tiefnet.backend import thread_limit
from tiefnet.data import load_mnist

import _harness  # bench/_harness.py: machine, load, quiet waits, reports
import nielsen_network  # bench/nielsen_network.py
from _harness import OutsideLoad, settle, verdict

TARGETS = {"A_tiefnet_over_torch": 0.25, "A_nielsen_over_tiefnet": 15.0, "B_tiefnet_over_torch": 0.8}
CONFIGS = {
    "A": dict(sizes=(784, 30, 10), cost="quadratic", eta=3.0, batch_size=10, init="large"),
    "B": dict(sizes=(784, 100, 10), cost="cross-entropy", eta=0.5, batch_size=100, init="large"),
}
RECOMMENDED = f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/speed_mnist.py --json bench/speed_mnist.json --markdown"


# ---------------------------------------------------------------------------------------
# Timed epochs
# ---------------------------------------------------------------------------------------
def build_tiefnet(cfg: dict, seed: int):
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(cfg["sizes"][:-1], cfg["sizes"][1:]):
        layers += [tn.Dense(n_in, n_out, init=cfg["init"], rng=rng), tn.Sigmoid()]
    loss = tn.Quadratic() if cfg["cost"] == "quadratic" else tn.CrossEntropy()
    return tn.Sequential(*layers), loss, tn.SGD(cfg["eta"]), rng


def tiefnet_epoch(net, loss, opt, rng, train, batch_size: int, threads: int) -> float:
    """One tiefnet epoch through the public API; the History's pure training seconds."""
    with thread_limit(threads):
        history = tn.fit(net, loss, opt, train, epochs=1, batch_size=batch_size, rng=rng,
                         monitor_train=False)
    return float(history.epochs[-1]["seconds"])


def mnist_data(n: int) -> dict:
    """The first ``n`` training images and all test images of ``load_mnist()``, float32 in [0, 1]."""
    splits = load_mnist()
    return {"x": np.ascontiguousarray(splits.train.x[:n], dtype=np.float32), "labels": np.asarray(splits.train.y[:n]),
            "x_test": np.ascontiguousarray(splits.test.x, dtype=np.float32), "labels_test": np.asarray(splits.test.y)}


def tiefnet_accuracy(net, x, labels) -> float:
    return float(np.mean(np.asarray(tn.predict(net, x)).argmax(axis=1) == labels))


def compare(name: str, cfg: dict, data: dict, threads: int, repeats: int, pause: float, seed: int) -> dict:
    """Interleaved tiefnet / PyTorch epochs for one configuration and thread count."""
    from torch_mlp import TorchMLPTrainer, torch_accuracy

    x, labels, y_onehot = data["x"], data["labels"], data["y_onehot"]
    net, loss, opt, rng = build_tiefnet(cfg, seed)
    trainer = TorchMLPTrainer(x, y_onehot, sizes=cfg["sizes"], cost=cfg["cost"], batch_size=cfg["batch_size"],
                              eta=cfg["eta"], seed=seed)  # PyTorch's default init: what a user writes
    epochs = {"tiefnet": lambda: tiefnet_epoch(net, loss, opt, rng, (x, labels), cfg["batch_size"], threads),
              "torch": lambda: trainer.epoch(threads)}
    runs = _harness.interleave(epochs, repeats, pause, label=f"[{name}] threads {threads}")
    result = {"threads": threads, "epochs": repeats, **{f: _harness.best_of(e) for f, e in runs.items()}}
    result["tiefnet"]["test_accuracy"] = tiefnet_accuracy(net, data["x_test"], data["labels_test"])
    result["torch"]["test_accuracy"] = torch_accuracy(trainer.model, data["x_test"], data["labels_test"])
    result["tiefnet_over_torch"] = result["tiefnet"]["best_seconds"] / result["torch"]["best_seconds"]
    return result


def time_nielsen(data: dict, repeats: int, pause: float, seed: int) -> dict:
    """Nielsen's per-sample loop (float64), ``repeats`` fresh networks, one epoch each."""
    cfg = CONFIGS["A"]
    training_data = nielsen_network.to_nielsen_format(data["x"], data["y_onehot"])  # not timed
    epochs = []
    for r in range(repeats):
        settle(pause)
        net = nielsen_network.Network(cfg["sizes"], rng=seed + r)
        with thread_limit(1), OutsideLoad() as load:  # tiny GEMVs: threads do not matter
            start = time.perf_counter()
            net.SGD(training_data, epochs=1, mini_batch_size=cfg["batch_size"], eta=cfg["eta"])
            seconds = time.perf_counter() - start
        acc = nielsen_network.accuracy(net, data["x_test"], data["labels_test"])
        epochs.append({"seconds": seconds, "outside_load": round(load.share, 3), "test_accuracy": acc})
        print(f"  [A] Nielsen per-sample loop, run {r + 1}/{repeats}: {seconds:8.3f} s   "
              f"(outside load {load.share:4.0%}, test accuracy after 1 epoch {acc:.4f})", flush=True)
    best = min(epochs, key=lambda e: e["seconds"])
    return {"best_seconds": best["seconds"], "outside_load_at_best": best["outside_load"],
            "test_accuracy": best["test_accuracy"], "dtype": "float64", "threads": 1, "epochs": epochs}


# ---------------------------------------------------------------------------------------
# C: GEMM peak and FLOPs
# ---------------------------------------------------------------------------------------
def epoch_flops(n: int, sizes=(784, 100, 10)) -> int:
    """Multiply-add FLOPs of one epoch: forward x W^T and dW for every layer, dx for all but the first."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * n * a * b for a, b in pairs)
    d_weights = forward
    d_inputs = sum(2 * n * a * b for a, b in pairs[1:])
    return forward + d_weights + d_inputs


def gemm_peak(size: int, threads: int, repeats: int) -> dict:
    """Best float32 GFLOP/s of numpy's ``size x size @ size x size`` (into a preallocated output)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    times = []
    with thread_limit(threads):
        np.matmul(a, b, out=out)  # warm-up: thread start, page faults
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
    best = min(times)
    return {"size": size, "threads": threads, "best_seconds": best, "gflops": 2 * size ** 3 / best / 1e9,
            "repeats": repeats}


def gemm_shapes_b(threads: int, batch: int = 100, reps: int = 300) -> dict:
    """GFLOP/s of config B's own GEMMs timed alone (an upper bound for the training loop)."""
    rng = np.random.default_rng(0)
    x = rng.random((batch, 784), dtype=np.float32)
    w1, w2 = rng.random((100, 784), dtype=np.float32), rng.random((10, 100), dtype=np.float32)
    h, d2, d1 = rng.random((batch, 100), dtype=np.float32), rng.random((batch, 10), dtype=np.float32), \
        rng.random((batch, 100), dtype=np.float32)
    products = {
        "x@W1.T": (lambda: x @ w1.T, 2 * batch * 784 * 100),
        "h@W2.T": (lambda: h @ w2.T, 2 * batch * 100 * 10),
        "d2.T@h": (lambda: d2.T @ h, 2 * batch * 100 * 10),
        "d2@W2": (lambda: d2 @ w2, 2 * batch * 100 * 10),
        "d1.T@x": (lambda: d1.T @ x, 2 * batch * 784 * 100),
    }
    out, total_seconds = {}, 0.0
    with thread_limit(threads):
        for name, (f, flops) in products.items():
            for _ in range(20):
                f()
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(reps):
                    f()
                best = min(best, (time.perf_counter() - start) / reps)
            out[name] = {"microseconds": best * 1e6, "gflops": flops / best / 1e9}
            total_seconds += best
    flops_step = sum(f for _, f in products.values())
    return {"threads": threads, "per_gemm": out, "step_gemm_microseconds": total_seconds * 1e6,
            "step_gflops": flops_step / total_seconds / 1e9}


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    lines = _harness.markdown_preamble(
        results, f"Training set: first {results['n_train']:,} MNIST images; best of {results['repeats']} epochs "
                 "(tiefnet and PyTorch interleaved), evaluation excluded.",
        load_note="; the outside load during each timed epoch is in the JSON file")
    if "A" in results:
        a = results["A"]
        nielsen = a.get("nielsen")
        lines.append("**A. 784-30-10, sigmoid, quadratic, eta 3.0, mini-batch 10** "
                     f"(targets: tiefnet/PyTorch <= {TARGETS['A_tiefnet_over_torch']}, "
                     f"Nielsen/tiefnet >= {TARGETS['A_nielsen_over_tiefnet']:g}x)")
        lines.append("")
        lines.append("| threads | tiefnet s/epoch | PyTorch s/epoch | Nielsen s/epoch | tiefnet/PyTorch | "
                     "Nielsen/tiefnet | test acc. tiefnet / PyTorch / Nielsen |")
        lines.append("|---:|---:|---:|---:|---:|---:|---|")
        for r in a["runs"]:
            tnf, tor = r["tiefnet"], r["torch"]
            ns = f"{nielsen['best_seconds']:.2f}" if nielsen else "-"
            sp = f"{r['nielsen_over_tiefnet']:.1f}x ({verdict(r['nielsen_over_tiefnet'], TARGETS['A_nielsen_over_tiefnet'], True)})" \
                if nielsen else "-"
            nacc = f"{nielsen['test_accuracy']:.2%}" if nielsen else "-"
            lines.append(f"| {r['threads']} | {tnf['best_seconds']:.3f} | {tor['best_seconds']:.3f} | {ns} | "
                         f"{r['tiefnet_over_torch']:.2f} ({verdict(r['tiefnet_over_torch'], TARGETS['A_tiefnet_over_torch'], False)}) "
                         f"| {sp} | {tnf['test_accuracy']:.2%} / {tor['test_accuracy']:.2%} / {nacc} |")
        lines.append("")
        lines.append(f"Accuracy after {results['repeats']} epochs (tiefnet: init N(0,1) as in the lecture; "
                     "PyTorch: its default init), Nielsen after 1 epoch; float32 except Nielsen (float64).")
        lines.append("")
    if "B" in results:
        lines.append("**B. 784-100-10, sigmoid, cross-entropy, eta 0.5, mini-batch 100** "
                     f"(target: tiefnet/PyTorch <= {TARGETS['B_tiefnet_over_torch']})")
        lines.append("")
        lines.append("| threads | tiefnet s/epoch | PyTorch s/epoch | tiefnet/PyTorch | test acc. tiefnet / PyTorch |")
        lines.append("|---:|---:|---:|---:|---|")
        for r in results["B"]["runs"]:
            tnf, tor = r["tiefnet"], r["torch"]
            lines.append(f"| {r['threads']} | {tnf['best_seconds']:.3f} | {tor['best_seconds']:.3f} | "
                         f"{r['tiefnet_over_torch']:.2f} ({verdict(r['tiefnet_over_torch'], TARGETS['B_tiefnet_over_torch'], False)}) "
                         f"| {tnf['test_accuracy']:.2%} / {tor['test_accuracy']:.2%} |")
        lines.append("")
    if "C" in results:
        c = results["C"]
        lines.append(f"**C. Share of the float32 GEMM peak, config B** ({c['epoch_gflop']:.2f} GFLOP per epoch: "
                     "forward and dW of both layers, dx of layer 2; elementwise work ignored)")
        lines.append("")
        lines.append(f"| threads | tiefnet epoch s | achieved GFLOP/s | numpy peak GFLOP/s ({c['peak_size']}^3) | "
                     "achieved/peak | B's GEMMs alone GFLOP/s |")
        lines.append("|---:|---:|---:|---:|---:|---:|")
        for r in c["runs"]:
            alone = f"{r['gemms_alone']['step_gflops']:.1f}" if r.get("gemms_alone") else "-"
            secs = f"{r['tiefnet_seconds']:.3f}" if r.get("tiefnet_seconds") else "-"
            ach = f"{r['achieved_gflops']:.1f}" if r.get("achieved_gflops") else "-"
            share = f"{r['share_of_peak']:.0%}" if r.get("share_of_peak") else "-"
            lines.append(f"| {r['threads']} | {secs} | {ach} | {r['peak']['gflops']:.1f} | {share} | {alone} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = _harness.benchmark_parser(__doc__, RECOMMENDED)
    p.add_argument("--quick", action="store_true", help="smoke test: 10,000 images, 2 repeats, small GEMM")
    p.add_argument("--repeats", type=int, default=None, help="timed epochs per framework and thread count "
                   "(best counts; default 5, quick 2)")
    p.add_argument("--nielsen-repeats", type=int, default=None, help="epochs of Nielsen's loop (default 2, quick 1)")
    _harness.add_threads_option(p)
    p.add_argument("--sections", default="A,B,C", help="which of A,B,C to run (default all)")
    p.add_argument("--no-nielsen", action="store_true", help="skip Nielsen's per-sample loop in A")
    p.add_argument("--n-train", type=int, default=None, help="training images (default 50000, quick 10000)")
    _harness.add_quiet_options(p)
    p.add_argument("--seed", type=int, default=0)
    _harness.add_output_options(p)
    args = p.parse_args(argv)
    args.sections = [s.strip().upper() for s in args.sections.split(",") if s.strip()]
    if not set(args.sections) <= {"A", "B", "C"}:
        p.error("--sections must be a subset of A,B,C")
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.nielsen_repeats = args.nielsen_repeats or (1 if args.quick else 2)
    args.n_train = args.n_train or (10_000 if args.quick else 50_000)
    if args.repeats < 1 or args.nielsen_repeats < 1 or not 1 <= args.n_train <= 50_000:
        p.error("--repeats and --nielsen-repeats must be >= 1 and --n-train in 1..50000")
    return args


def section_c(n: int, b_runs: list[dict], threads: list[int], quick: bool, pause: float) -> dict:
    """C: numpy's float32 GEMM peak and B's GEMMs alone per thread count, against B's tiefnet epoch."""
    size, reps = (1024, 3) if quick else (2048, 5)
    flops = epoch_flops(n, CONFIGS["B"]["sizes"])
    c = {"epoch_flops": flops, "epoch_gflop": flops / 1e9, "peak_size": size, "runs": []}
    for t in threads:
        settle(pause)
        with OutsideLoad() as peak_load:
            peak = gemm_peak(size, t, reps)
        peak["outside_load"] = round(peak_load.share, 3)
        alone = gemm_shapes_b(t, CONFIGS["B"]["batch_size"], reps=100 if quick else 300)
        run = {"threads": t, "peak": peak, "gemms_alone": alone}
        b_run = next((r for r in b_runs if r["threads"] == t), None)
        if b_run is not None:
            secs = b_run["tiefnet"]["best_seconds"]
            run.update(tiefnet_seconds=secs, achieved_gflops=flops / secs / 1e9)
            run["share_of_peak"] = run["achieved_gflops"] / peak["gflops"]
        c["runs"].append(run)
        print(f"  [C] threads {t}: numpy float32 {size}^3 peak {peak['gflops']:.1f} GFLOP/s "
              f"(outside load {peak_load.share:.0%}); B's GEMMs alone {alone['step_gflops']:.1f} GFLOP/s"
              + (f"; tiefnet B epoch {run['achieved_gflops']:.1f} GFLOP/s = {run['share_of_peak']:.0%} "
                 "of peak" if b_run else ""), flush=True)
    return c


def main(argv=None) -> dict:
    args = parse_args(argv)
    _harness.apply_quiet_options(args)
    env = _harness.announce_environment(RECOMMENDED)

    n = args.n_train
    data = mnist_data(n)
    data["y_onehot"] = nielsen_network.one_hot(data["labels"])

    with _harness.RunLoad() as run_load:
        results = {"quick": args.quick, "n_train": n, "repeats": args.repeats, "threads": args.threads,
                   "targets": TARGETS, "configs": {k: {**v, "sizes": list(v["sizes"])} for k, v in CONFIGS.items()},
                   "environment": env}
        if "A" in args.sections:
            print(f"A: 784-30-10 quadratic, eta 3.0, batch 10, {n} images", flush=True)
            a = {"runs": [compare("A", CONFIGS["A"], data, t, args.repeats, args.pause, args.seed)
                          for t in args.threads]}
            if not args.no_nielsen:
                a["nielsen"] = time_nielsen(data, args.nielsen_repeats, args.pause, args.seed)
                for r in a["runs"]:
                    r["nielsen_over_tiefnet"] = a["nielsen"]["best_seconds"] / r["tiefnet"]["best_seconds"]
            results["A"] = a
        if "B" in args.sections or "C" in args.sections:
            print(f"B: 784-100-10 cross-entropy, eta 0.5, batch 100, {n} images", flush=True)
            results["B"] = {"runs": [compare("B", CONFIGS["B"], data, t, args.repeats, args.pause, args.seed)
                                     for t in args.threads]}
        if "C" in args.sections:
            results["C"] = section_c(n, results["B"]["runs"], args.threads, args.quick, args.pause)
    results["load"] = run_load.record

    print()
    print(markdown(results) if args.markdown else summary(results))
    _harness.write_json(args.json, results)
    return results


def summary(results: dict) -> str:
    """Plain-text digest (the default output without --markdown)."""
    out = []
    for key in ("A", "B"):
        for r in results.get(key, {}).get("runs", []):
            extra = f", Nielsen/tiefnet {r['nielsen_over_tiefnet']:.1f}x" if "nielsen_over_tiefnet" in r else ""
            out.append(f"{key} threads {r['threads']}: tiefnet {r['tiefnet']['best_seconds']:.3f} s, "
                       f"PyTorch {r['torch']['best_seconds']:.3f} s, tiefnet/PyTorch {r['tiefnet_over_torch']:.2f}"
                       f"{extra}; test acc {r['tiefnet']['test_accuracy']:.2%} / {r['torch']['test_accuracy']:.2%}")
    if "nielsen" in results.get("A", {}):
        nl = results["A"]["nielsen"]
        out.append(f"A Nielsen per-sample loop: {nl['best_seconds']:.2f} s, test acc {nl['test_accuracy']:.2%}")
    for r in results.get("C", {}).get("runs", []):
        if "share_of_peak" in r:
            out.append(f"C threads {r['threads']}: {r['achieved_gflops']:.1f} of {r['peak']['gflops']:.1f} GFLOP/s "
                       f"= {r['share_of_peak']:.0%} of the numpy float32 GEMM peak")
    out.append(_harness.load_summary(results["load"]))
    return "\n".join(out)


if __name__ == "__main__":
    main()
