"""Issue 16, acceptance 2: a bounded load test of ``tiefnet serve`` on loopback.

Trains the lecture's default network (``tiefnet mnist``: 784-30-10; only its shape matters for the
speed, so ``--epochs 1``), starts ``tiefnet serve --models`` on it in its own process, and lets several
client processes send predictions for MNIST test digits for ``--seconds`` each, as fast as the server
answers: the 784 prepared pixels (``/api/predict/NAME/pixels``) and, separately, the drawing as PNG
(``/image``: MNIST's preparation included). Reports predictions/s, p50/p99 latency and every response
that was not a 200.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/serve_load.py --json bench/results/serve_load.json

Target: >= 300 predictions/s of the default network with no error response.
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _harness  # bench/_harness.py: machine, BLAS kernel, load

TIEFNET = [sys.executable, "-m", "tiefnet.cli"]


def _png(x: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((255 * x.reshape(28, 28)).astype(np.uint8)).resize((280, 280)).save(buffer, "PNG")
    return buffer.getvalue()


def client(url: str, endpoint: str, seconds: float, start: float, index: int, queue) -> None:
    import httpx

    from tiefnet.data import load_mnist

    test = load_mnist().test
    rows = [np.asarray(test.x[k]) for k in range(index * 50, index * 50 + 50)]
    bodies = [_png(x) for x in rows] if endpoint == "image" else [{"pixels": x.tolist()} for x in rows]
    latencies, errors = [], 0
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.time() < start:
            time.sleep(0.01)
        k = 0
        while time.time() < start + seconds:
            body = bodies[k % len(bodies)]
            t = time.perf_counter()
            if endpoint == "image":
                r = http.post("/api/predict/default/image", content=body, headers={"Content-Type": "image/png"})
            else:
                r = http.post("/api/predict/default/pixels", json=body)
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 200
            k += 1
    queue.put((latencies, errors))


def load(url: str, endpoint: str, clients: int, seconds: float) -> dict:
    queue = multiprocessing.get_context("spawn").Queue()
    start = time.time() + 5  # every client has loaded its data by then
    procs = [multiprocessing.get_context("spawn").Process(target=client, args=(url, endpoint, seconds, start, i, queue))
             for i in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = np.concatenate([np.asarray(r[0]) for r in results])
    errors = sum(r[1] for r in results)
    row = {"endpoint": endpoint, "clients": clients, "seconds": seconds, "requests": int(len(latencies)),
           "per_second": len(latencies) / seconds, "p50_ms": 1000 * float(np.percentile(latencies, 50)),
           "p99_ms": 1000 * float(np.percentile(latencies, 99)), "errors": int(errors)}
    print(f"{endpoint:6s} {clients} clients, {seconds:.0f} s: {row['per_second']:.0f} predictions/s, p50 "
          f"{row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, {errors} error responses", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per endpoint")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.announce_environment(f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/serve_load.py",
                                        torch=False)
    results = {"openblas_kernel": _harness.openblas_kernels(env), "environment": env, "rows": []}
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "default"
        subprocess.run(TIEFNET + ["mnist", "--epochs", "1", "--no-progress", "--out", str(model)], check=True,
                       capture_output=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(TIEFNET + ["serve", "--models", str(model), "--port", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            import httpx

            for _ in range(300):
                try:
                    httpx.get(url + "/api/models", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            with _harness.RunLoad() as run_load:
                for endpoint in ("pixels", "image"):
                    results["rows"].append(load(url, endpoint, args.clients, args.seconds))
            results["load"] = run_load.record
        finally:
            server.terminate()
            server.wait(timeout=30)
    _harness.write_json(args.json, results)


if __name__ == "__main__":
    main()
