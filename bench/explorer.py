"""The explorer's start-up time and each action's latency through the running app's API, as JSON.

    .venv/bin/python -m bench.explorer [--checkpoints checkpoints] [--data-dir DIR] [--repeats 50]
        [--out bench/results/explorer-cpu-2core.json]

Starts `python app.py` three times in a fresh cache folder: cold (nothing cached; the neighbour
index and a map are then built through the API), warm (caches on disk), and once more warm.
Latencies are wall-clock times of `gradio_client` calls on the warm app, left/right = the app's
default pair, after 3 warm-up calls each: p50 / p95 / max in ms.
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gradio_client import Client

from bench import report

ROOT = Path(__file__).resolve().parents[1]
TABLE4 = ("this church choir sings to the masses as they sing joyous songs from the book at a church .",
          "a woman with a green headscarf , blue shirt and a very big grin .")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(args, cache: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    cmd = [sys.executable, "app.py", "--port", str(port), "--checkpoints", args.checkpoints, "--cache-dir", str(cache)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if "explorer ready" in line:
            break
    else:
        raise RuntimeError("the app exited before it was ready")
    ready = time.perf_counter() - start
    # drain the rest of its output so the pipe never fills
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, f"http://127.0.0.1:{port}/", ready


def timed(fn, repeats: int) -> dict:
    for _ in range(3):
        fn()
    ms = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "max_ms": round(ms[-1], 1), "calls": repeats}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.explorer", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument("--data-dir")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as cache:
        proc, url, ready = start_app(args, Path(cache))
        result["ready_cold_s"] = round(ready, 2)
        client = Client(url, verbose=False)
        # the default pair, read from the app's own dropdowns
        cfg = client.config
        values = {c.get("props", {}).get("elem_id"): c.get("props", {}).get("value") for c in cfg["components"]}
        left, right = values["left-model"], values["right-model"]
        result["pair"] = [left, right]
        t = time.perf_counter()
        client.predict(left, right, "a dog runs .", 10, api_name="/neighbours")
        result["neighbour_index_build_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        client.predict(left, right, "valid", 2000, "active unit #1", api_name="/latent_map")
        result["latent_map_2000_build_s"] = round(time.perf_counter() - t, 2)
        readies = []
        for _ in range(2):  # restart twice on the warm cache; the second app serves the latencies
            proc.terminate()
            proc.wait(30)
            proc, url, ready = start_app(args, Path(cache))
            readies.append(round(ready, 2))
        result["ready_warm_s"] = readies
        client = Client(url, verbose=False)
        t = time.perf_counter()
        client.predict(left, right, "valid", 2000, "active unit #1", api_name="/latent_map")
        result["latent_map_2000_cached_first_s"] = round(time.perf_counter() - t, 2)
        actions = {
            "reconstruct (2 sentences, mean + 3 posterior samples, greedy)": lambda: client.predict(
                left, right, "a dog runs through the grass .\ntwo children are playing on the beach .", 3, "greedy",
                1.0, 5, 0, api_name="/reconstruct"),
            "interpolate (10 points, Table 4 pair, greedy)": lambda: client.predict(
                left, right, *TABLE4, 10, "linear", "greedy", 1.0, 5, 0, api_name="/interpolate"),
            "sample (10 prior sentences, greedy)": lambda: client.predict(
                left, right, 10, 0, "greedy", 1.0, 5, api_name="/sample"),
            "neighbours (top 10 over the whole training split)": lambda: client.predict(
                left, right, "a black dog is running on the grass .", 10, api_name="/neighbours"),
            "latent map (2,000 sentences, cached)": lambda: client.predict(
                left, right, "valid", 2000, "active unit #1", api_name="/latent_map"),
        }
        result["latency_per_call_both_models"] = {name: timed(fn, args.repeats if "map" not in name else 10)
                                                  for name, fn in actions.items()}
        proc.terminate()
        proc.wait(30)
    report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
