"""Seconds per iteration of Gatys's style transfer (3.4), tiefnet against PyTorch, in one run (issue 13).

One iteration: the picture x^ (1, 3, S, S) through the frozen feature network to its taps, the
Gram matrices and the costs L_total = alpha L_content + beta sum_l w_l L_style(l), the backward
pass down to the pixels dL_total/dx^, and an Adam step on x^. PyTorch runs the same network with
the same filters (copied from tiefnet's), the same costs, autograd for the gradient and
torch.optim.Adam. Best of several iterations, the two in alternating blocks, at 1 and 2 threads.
The JSON file holds the machine (CPU model, the OpenBLAS kernel that ran) and the load.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/style_speed.py --json bench/results/style_speed.json

``--net vgg19`` times VGG-19 (random filters) instead of the default random network.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import _harness  # bench/_harness.py: machine, BLAS kernel, load

IDLE = 0.5  # seconds between blocks (PyTorch's OpenMP threads spin for a while after a parallel region)


def pictures(size: int):
    from tiefnet.data.pictures import fit, read_picture

    content = read_picture("astronaut", size)[None]
    style = fit(read_picture("starry_night", size), *content.shape[2:])[None]
    return content, style


def features(net: str):
    from tiefnet.vision.features import random_features

    if net == "random":
        return random_features()
    from tiefnet.vision.vgg import vgg19_features, vgg19_net

    return vgg19_features(vgg19_net(np.random.default_rng(0)))


def tiefnet_step(net: str, size: int, threads: int):
    from tiefnet.backend import picture_threads
    from tiefnet.optim import Adam
    from tiefnet.vision.style_losses import PerceptualLoss

    content, style = pictures(size)
    feats = features(net)
    loss = PerceptualLoss(feats, style, alpha=1.0, beta=1e3)
    a_content = loss.content_target(content)
    x = content.copy()
    adam = Adam(eta=0.02).bind(x)

    def step() -> float:
        with picture_threads(threads):
            start = time.perf_counter()
            _, _, dx = loss(x, a_content)
            adam.step(dx)
            np.clip(x, 0.0, 1.0, out=x)
            return time.perf_counter() - start

    return step, feats


def torch_step(feats, size: int, threads: int):
    import torch

    from tiefnet.nn import Conv2d, MaxPool2d, ReLU

    content, style = pictures(size)
    layers = []
    for layer in feats.taps.net.layers[: max(feats.taps.taps.values()) + 1]:
        if isinstance(layer, Conv2d):
            conv = torch.nn.Conv2d(layer.C, layer.F, (layer.Q, layer.R), padding=layer.P, stride=layer.S)
            conv.weight.data = torch.tensor(np.asarray(layer.params["W"]))
            conv.bias.data = torch.tensor(np.asarray(layer.params["b"]))
            layers.append(conv)
        elif isinstance(layer, ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(layer, MaxPool2d):
            layers.append(torch.nn.MaxPool2d(layer.k, layer.s))
        else:
            raise TypeError(f"no torch twin for {layer.describe()}")
    net = torch.nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    taps = feats.taps.taps
    mean = torch.tensor(feats.mean, dtype=torch.float32).reshape(1, 3, 1, 1)
    std = torch.tensor(feats.std, dtype=torch.float32).reshape(1, 3, 1, 1)

    def run(x):
        out, h = {}, (x - mean) / std
        for i, layer in enumerate(net):
            h = layer(h)
            for name, index in taps.items():
                if index == i:
                    out[name] = h
        return out

    def gram(a):
        F = a.shape[1]
        A = a.reshape(F, -1)
        return A @ A.T

    with torch.no_grad():
        targets = run(torch.tensor(content))
        a_content = targets[feats.content_layer]
        style_acts = run(torch.tensor(style))
        G_style = {n: gram(style_acts[n]) for n in feats.style_weights}
    x = torch.tensor(content.copy(), requires_grad=True)
    adam = torch.optim.Adam([x], lr=0.02)

    def step() -> float:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            start = time.perf_counter()
            adam.zero_grad()
            acts = run(x)
            L_content = 0.5 * ((acts[feats.content_layer] - a_content) ** 2).sum()
            L_style = 0
            for name, w in feats.style_weights.items():
                a = acts[name]
                F, M = a.shape[1], a.shape[2] * a.shape[3]
                L_style = L_style + w * ((gram(a) - G_style[name]) ** 2).sum() / (4 * F**2 * M**2)
            (L_content + 1e3 * L_style).backward()
            adam.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(previous)

    return step


def compare(net: str, size: int, threads: int, steps: int, rounds: int) -> dict:
    ours, feats = tiefnet_step(net, size, threads)
    theirs = torch_step(feats, size, threads)
    times_ours, times_theirs = _harness.alternate_steps(ours, theirs, steps, rounds, IDLE, wake=1)
    best_ours, best_theirs = min(times_ours), min(times_theirs)
    return {"net": net, "size": size, "threads": threads, "tiefnet_ms": 1e3 * best_ours, "torch_ms": 1e3 * best_theirs,
            "tiefnet_median_ms": 1e3 * float(np.median(times_ours)), "torch_median_ms": 1e3 * float(np.median(times_theirs)),
            "ratio": best_ours / best_theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=("random", "vgg19"), default="random", help="feature network (default random)")
    parser.add_argument("--size", type=int, default=256, help="picture side in pixels (default 256)")
    parser.add_argument("--steps", type=int, default=5, help="timed iterations per block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per framework and thread count")
    _harness.add_threads_option(parser)
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.announce_environment(f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/style_speed.py")
    kernel = _harness.openblas_kernels(env)
    results = {"openblas_kernel": kernel, "rows": [], "environment": env}
    print(f"style transfer iteration, {args.net} network, {args.size}x{args.size}; OpenBLAS kernel {kernel}")
    with _harness.RunLoad() as run_load:
        for threads in args.threads:
            row = compare(args.net, args.size, threads, args.steps, args.rounds)
            results["rows"].append(row)
            print(f"threads {threads}: tiefnet {row['tiefnet_ms']:.1f} ms, torch {row['torch_ms']:.1f} ms, "
                  f"ratio {row['ratio']:.2f}", flush=True)
    results["load"] = run_load.record
    _harness.write_json(args.json, results)


if __name__ == "__main__":
    main()
