"""Speed of one LSTM training step, tiefnet against torch.nn.LSTM, in one run (issue 4).

The character model of chapter 4: ids (batch 32, T = 100) -> Embedding(65, 65) -> LSTM(65, 256)
-> a Dense(256, 65) at every step -> softmax + log-likelihood; one step = forward, backward
(BPTT over the 100 steps) and an Adam update. Timed on random ids, best of several steps,
tiefnet and PyTorch in alternating blocks of steps, at 1 and 2 threads. The JSON file also holds
the machine (CPU model, the OpenBLAS kernel that ran; see bench/_harness.py) and the load.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/speed_lstm.py

``--steps 1 --rounds 1 --threads 1`` is a smoke test.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import _harness  # bench/_harness.py: machine, BLAS kernel, load

V, H, T, N = 65, 256, 100, 32
IDLE = 0.5  # seconds between blocks, so that neither framework's spinning threads disturb the other


def tiefnet_step(threads: int, seed: int = 0, split: str = "processes"):
    """One step as fit runs it (train.step_runner): at 2+ threads each mini-batch is cut into one part per
    thread, on processes (``split="processes"``, tiefnet.parallel) or on threads inside the layers ("layers",
    what a stateful char-rnn LSTM uses)."""
    import tiefnet as tn
    from tiefnet.backend import thread_limit
    from tiefnet.train import step_runner

    rng = np.random.default_rng(seed)
    net = tn.Sequential(tn.Embedding(V, V, rng=rng), tn.LSTM(V, H, rng=rng), tn.Dense(H, V, rng=rng), tn.Softmax())
    loss, opt = tn.LogLikelihood(), tn.Adam(2e-3).bind(net, 1)
    x = rng.integers(0, V, (N, T))
    y = np.eye(V, dtype=np.float32)[rng.integers(0, V, (N, T))]

    with thread_limit(threads):
        runner = step_runner(net, loss, opt) if split == "processes" else None

    def step() -> float:
        with thread_limit(threads):  # set up outside the timed part, like torch.set_num_threads below
            start = time.perf_counter()
            if runner is not None:
                runner.step(x, y)
            else:
                net.forward(x, True)
                net.backward_from(loss, y)
                opt.step()
            return time.perf_counter() - start

    step.close = runner.close if runner is not None else (lambda: None)  # the worker processes, if any
    return step


def torch_step(threads: int, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    embed, lstm, out = torch.nn.Embedding(V, V), torch.nn.LSTM(V, H, batch_first=True), torch.nn.Linear(H, V)
    params = [*embed.parameters(), *lstm.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, V, (N, T), generator=g), torch.randint(0, V, (N, T), generator=g)

    def step() -> float:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            start = time.perf_counter()
            opt.zero_grad()
            h, _ = lstm(embed(x))
            torch.nn.functional.cross_entropy(out(h).reshape(-1, V), y.reshape(-1)).backward()
            opt.step()
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(previous)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per block")
    parser.add_argument("--rounds", type=int, default=4, help="blocks per framework and thread count")
    parser.add_argument("--split", choices=("processes", "layers"), default="processes",
                        help="at 2+ threads: the mini-batch in parts on processes (fit's default) or on threads "
                             "inside the LSTM layer (a stateful char-rnn)")
    _harness.add_threads_option(parser)
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.announce_environment(f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/speed_lstm.py")
    kernel = _harness.openblas_kernels(env)
    results = {"shape": {"V": V, "H": H, "T": T, "N": N}, "split": args.split, "openblas_kernel": kernel, "rows": [], "environment": env}
    print(f"LSTM step, vocabulary {V}, hidden {H}, T {T}, batch {N}; OpenBLAS kernel {kernel}")
    with _harness.RunLoad() as run_load:
        for threads in args.threads:
            row = compare(threads, args.steps, args.rounds, args.split)
            results["rows"].append(row)
            print(f"threads {threads}: tiefnet {row['tiefnet_ms']:.1f} ms, torch {row['torch_ms']:.1f} ms, "
                  f"ratio {row['ratio']:.2f}")
    results["load"] = run_load.record
    _harness.write_json(args.json, results)


def compare(threads: int, steps: int, rounds: int, split: str = "processes") -> dict:
    """Best step of each framework over ``rounds`` alternating blocks of ``steps`` timed steps."""
    ours, theirs = tiefnet_step(threads, split=split), torch_step(threads)
    try:
        times_ours, times_theirs = _harness.alternate_steps(ours, theirs, steps, rounds, IDLE)
    finally:
        ours.close()
    best_ours, best_theirs = min(times_ours), min(times_theirs)
    return {"threads": threads, "tiefnet_ms": 1e3 * best_ours, "torch_ms": 1e3 * best_theirs,
            "ratio": best_ours / best_theirs}


if __name__ == "__main__":
    main()
