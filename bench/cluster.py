"""What Ray costs on one machine, beside core.commands.parallel's processes: a local cluster's start-up,
shutdown and memory, and the wall time of the same small alpha sweep on each path, alternated.

    VAE_MINE_DATA=../shared/data .venv/bin/python -m bench.cluster [--repeats 3] [--alphas 2,4]
        [--out bench/results/cluster-cpu-2core.json]

The figures decide whether `--jobs` (core.commands.parallel) earns its place beside `--ray` (docs/cluster.md).
Memory: the resident set of every process Ray started (its GCS, raylet, agents, idle workers),
read from /proc after the first task has run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    children: dict[int, list[int]] = {}
    for child, parent in zip(out[::2], out[1::2]):
        children.setdefault(int(parent), []).append(int(child))
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def ray_start_up() -> dict:
    """One local cluster in this process: import, init, first task, memory, shutdown."""
    t0 = time.perf_counter()
    import ray

    t1 = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    t2 = time.perf_counter()
    ray.get(ray.remote(lambda: os.getpid()).remote())
    t3 = time.perf_counter()
    pids = descendants(os.getpid())
    memory = rss_mib(pids)
    ray.shutdown()
    t4 = time.perf_counter()
    return {
        "import_s": round(t1 - t0, 2),
        "init_s": round(t2 - t1, 2),
        "first_task_s": round(t3 - t2, 2),
        "shutdown_s": round(t4 - t3, 2),
        "processes": len(pids),
        "rss_mib": memory,
    }


def sweep_seconds(flags: list[str], alphas: str, data: str) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    argv = [
        sys.executable,
        "-m",
        "core.sweep",
        "--alphas",
        alphas,
        "--out",
        str(out / "s"),
        *flags,
        "--corpus",
        "ptb",
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--max-train",
        "400",
        "--seed",
        "3",
        "--data-dir",
        data,
        "--device",
        "cpu",
        "--no-progress",
    ]
    start = time.perf_counter()
    result = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    return round(seconds, 1)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--alphas", default="2,4")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    data = os.environ.get("VAE_MINE_DATA", "data")
    start_up = [
        subprocess.run(
            [sys.executable, "-c", "import json, bench.cluster as b; print(json.dumps(b.ray_start_up()))"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
        for _ in range(args.repeats)
    ]
    import json

    start_up = [json.loads(r.stdout.strip().splitlines()[-1]) for r in start_up]
    processes, ray = [], []
    for _ in range(args.repeats):  # alternated, so a change in the host's load falls on both
        processes.append(sweep_seconds(["--jobs", "0"], args.alphas, data))
        ray.append(sweep_seconds(["--ray"], args.alphas, data))
    report(
        {
            "machine": f"{os.cpu_count()} CPUs",
            "ray_local_cluster": start_up,
            "sweep": {
                "alphas": args.alphas,
                "config": "tiny, 1 epoch, 400 sentences",
                "processes_s": processes,
                "ray_s": ray,
            },
        },
        args.out,
    )


if __name__ == "__main__":
    main()
