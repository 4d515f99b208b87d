"""A frozen feature network computes no weight gradients: backward to the image, trainable vs frozen.

Style transfer (Gatys et al.) needs only dC/d(image) through a fixed VGG: after ``net.freeze()``
every Conv2d's backward computes (BP2-conv), the input gradient, and skips (BP3-conv) and
(BP4-conv), db and dW. This shows it by time and by what is written:

- the network, VGG-like: per width w of ``--widths``, ``Conv2d(C, w, 3, padding=1) - ReLU -
  Conv2d(w, w, 3, padding=1) - ReLU - MaxPool2d(2)``, on random images (``--batch`` x 3 x
  ``--size`` x ``--size``, float32) with a random upstream gradient dC/d(output);
- timed: ``net.backward(grad, need_input_grad=True)`` alone, after an untimed
  ``net.forward(x, train=True)``, on 1 thread (``tiefnet.backend.thread_limit(1)``), (a) with
  every layer trainable and (b) after ``net.freeze()``, in turns (a, b, a, b, ...) each after a
  short idle (bench/_harness.py); best of ``--repeats`` and the median;
- written in (b): after a first trainable backward every ``grads`` array is made read-only
  (``g.flags.writeable = False``) before each frozen backward, so a write into one would raise;
  afterwards each must still be the same array with the same values; counted over all (b) runs;
- dC/dx of (a) and (b) must be identical, bit for bit.

In GEMM FLOPs a conv layer's dW costs as much as its dx, so (b) should take about half of (a),
plus what is not a GEMM (col2im, ReLU and pooling backward).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/frozen_backward.py \\
        [--json bench/frozen_backward.json]

``--quick`` is a smoke test (32 x 32 images, 3 repeats).
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tiefnet as tn
from tiefnet.backend import thread_limit

import _harness  # bench/_harness.py: machine, BLAS kernel, load, quiet waits

RECOMMENDED = f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/frozen_backward.py"


def build_vgg(widths: tuple[int, ...], rng: np.random.Generator) -> tn.Sequential:
    """Two 3x3 convolutions (padding 1) with ReLU per width, then a 2x2 max-pooling (VGG's blocks)."""
    layers, C = [], 3
    for w in widths:
        layers += [tn.Conv2d(C, w, 3, padding=1, rng=rng), tn.ReLU(),
                   tn.Conv2d(w, w, 3, padding=1, rng=rng), tn.ReLU(), tn.MaxPool2d(2)]
        C = w
    return tn.Sequential(*layers)


def conv_gemm_flops(net: tn.Sequential, x_shape: tuple[int, ...]) -> dict:
    """GEMM FLOPs of one backward: dW (BP4-conv) and dx (BP2-conv) of every Conv2d (db ignored)."""
    N, _, H, W = x_shape
    d_weights = d_inputs = 0
    for layer in net.layers:
        if isinstance(layer, tn.Conv2d):
            flops = 2 * N * H * W * layer.C * layer.Q * layer.R * layer.F  # padding 1, stride 1: H_out = H
            d_weights, d_inputs = d_weights + flops, d_inputs + flops
        elif isinstance(layer, tn.MaxPool2d):
            H, W = H // 2, W // 2
    return {"dW_gflop": d_weights / 1e9, "dx_gflop": d_inputs / 1e9}


def grad_arrays(net: tn.Sequential) -> list[tuple[str, tn.Layer, str]]:
    """(key, layer, name) of every parameter-gradient array of the tree."""
    return [(p.key, p.layer, p.name) for p in net.parameters()]


def set_writeable(net: tn.Sequential, writeable: bool) -> None:
    """Make every existing grads array writeable or read-only (a write into a read-only one raises)."""
    for _, layer, name in grad_arrays(net):
        if name in layer.grads:  # before the first trainable backward there is none
            layer.grads[name].flags.writeable = writeable


class FrozenBackwardCase:
    """The two timed blocks, (a) trainable and (b) frozen, and what (b) wrote."""

    def __init__(self, net: tn.Sequential, x: np.ndarray, grad: np.ndarray):
        self.net, self.x, self.grad = net, x, grad
        self.dx: dict[str, np.ndarray] = {}
        self.written: set[str] = set()  # keys of grads arrays a frozen backward replaced or changed
        self.write_errors: list[str] = []  # writes into a read-only grads array (refused)
        self.trainable()  # the first trainable backward: every grads array exists
        self.reference = {key: (layer.grads[name], layer.grads[name].copy()) for key, layer, name in grad_arrays(net)}

    def _backward(self) -> float:
        self.net.forward(self.x, train=True)  # not timed
        start = time.perf_counter()
        dx = self.net.backward(self.grad, need_input_grad=True)  # dC/d(image), as style transfer needs
        seconds = time.perf_counter() - start
        self.dx["trainable" if self.net.trainable else "frozen"] = np.array(dx)
        return seconds

    def trainable(self) -> float:
        """(a): every layer trainable, backward computes dW, db and dx."""
        self.net.unfreeze()
        set_writeable(self.net, True)
        return self._backward()

    def frozen(self) -> float:
        """(b): ``net.freeze()``, grads read-only; backward must compute dx only."""
        self.net.freeze()
        set_writeable(self.net, False)
        try:
            seconds = self._backward()
        except ValueError as error:  # "assignment destination is read-only" / "output array is read-only"
            self.write_errors.append(str(error))
            seconds = float("nan")
        for key, layer, name in grad_arrays(self.net):
            array, values = self.reference[key]
            if layer.grads.get(name) is not array or not np.array_equal(array, values):
                self.written.add(key)
        return seconds


def run(args) -> dict:
    rng = np.random.default_rng(args.seed)
    net = build_vgg(args.widths, rng)
    x = rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    with thread_limit(1):
        out = net.forward(x)
        grad = rng.standard_normal(out.shape).astype(np.float32)  # dC/d(output), fixed
        case = FrozenBackwardCase(net, x, grad)
        case.frozen()  # warm-up of (b)
        runs = _harness.interleave({"trainable": case.trainable, "frozen": case.frozen}, args.repeats, args.pause,
                                   label="1 thread", unit="backward", digits=3)
    trainable, frozen = _harness.best_of(runs["trainable"]), _harness.best_of(runs["frozen"])
    dx_a, dx_b = case.dx["trainable"], case.dx["frozen"]
    return {"config": {"widths": list(args.widths), "batch": args.batch, "image": [3, args.size, args.size],
                       "repeats": args.repeats, "quick": args.quick, "threads": 1, "dtype": str(x.dtype), "seed": args.seed,
                       "network": net.describe()},
            "gemm_flops_per_backward": conv_gemm_flops(net, x.shape),
            "trainable": trainable, "frozen": frozen,
            "frozen_over_trainable_best": frozen["best_seconds"] / trainable["best_seconds"],
            "frozen_over_trainable_median": frozen["median_seconds"] / trainable["median_seconds"],
            "grad_arrays": len(case.reference), "grad_arrays_written_frozen": len(case.written),
            "grad_arrays_written_keys": sorted(case.written), "write_errors": case.write_errors,
            "dx_identical": bool(dx_a.shape == dx_b.shape and np.array_equal(dx_a, dx_b)),
            "dx_shape": list(dx_a.shape)}


def markdown_row(results: dict) -> str:
    """One row of a RESULTS.md table: what | command | result | machine."""
    c, env, load = results["config"], results["environment"], results["load"]
    a, b = results["trainable"], results["frozen"]
    flops = results["gemm_flops_per_backward"]
    what = (f"backward to the image (`need_input_grad=True`) through a VGG-like stack, widths "
            f"{'-'.join(map(str, c['widths']))} (two 3x3 convs + ReLU, then 2x2 max-pool, per width), "
            f"batch {c['batch']} x {'x'.join(map(str, c['image']))}, 1 thread: all layers trainable vs "
            f"`net.freeze()`, commit {env['git_commit']}" + (" **(QUICK MODE: smoke test)**" if c["quick"] else ""))
    result = (f"trainable {a['best_seconds']:.3f} s (median {a['median_seconds']:.3f}), frozen "
              f"{b['best_seconds']:.3f} s (median {b['median_seconds']:.3f}): **{results['frozen_over_trainable_best']:.2f}x** "
              f"(best of {c['repeats']}; GEMMs {flops['dW_gflop'] + flops['dx_gflop']:.1f} vs {flops['dx_gflop']:.1f} "
              f"GFLOP); grads arrays written when frozen: **{results['grad_arrays_written_frozen']} of "
              f"{results['grad_arrays']}** (read-only, no write refused: {not results['write_errors']}); dC/dx "
              f"identical: {results['dx_identical']}")
    machine = (f"CPU ({env['cpu']}, OpenBLAS {env['numpy_openblas_kernel']}), {env['date'][:10]}, loadavg "
               f"{load['loadavg_start'][0]:.2f}, outside load {load['outside_share_whole_run']:.0%}")
    return f"| {what} | `{env['command']}` | {result} | {machine} |"


def parse_args(argv=None):
    p = _harness.benchmark_parser(__doc__, RECOMMENDED)
    p.add_argument("--quick", action="store_true", help="smoke test: 32 x 32 images, 3 repeats")
    p.add_argument("--widths", type=_harness.counts, default=[64, 128, 256], help="feature maps of each VGG block (default 64,128,256)")
    p.add_argument("--size", type=int, default=None, help="image height and width (default 64, quick 32)")
    p.add_argument("--batch", type=int, default=4, help="images per backward (default 4)")
    p.add_argument("--repeats", type=int, default=None, help="timed backward passes of each (default 15, quick 3)")
    p.add_argument("--seed", type=int, default=0)
    _harness.add_quiet_options(p, pause=0.1, max_wait=2.0)
    _harness.add_output_options(p, markdown=False)
    args = p.parse_args(argv)
    args.widths = tuple(args.widths)
    args.size = args.size or (32 if args.quick else 64)
    args.repeats = args.repeats or (3 if args.quick else 15)
    if args.size % 2 ** len(args.widths) or args.batch < 1 or args.repeats < 1:
        p.error(f"--size must be a multiple of 2^{len(args.widths)} (one pooling per width); "
                "--batch and --repeats >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    _harness.apply_quiet_options(args)
    env = _harness.announce_environment(RECOMMENDED, torch=False)
    with _harness.RunLoad() as run_load:
        results = run(args)
    results.update(environment=env, load=run_load.record)
    print()
    print(markdown_row(results))
    _harness.write_json(args.json, results)
    ok = results["grad_arrays_written_frozen"] == 0 and not results["write_errors"] and results["dx_identical"]
    if not ok:
        print("FAILED: a frozen backward wrote a weight gradient, or dC/dx differs", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
