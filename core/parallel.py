"""Independent runs side by side: one process per run (`python -m core.X ...`), spread over the
visible GPUs, each writing its output to its own log file.

A GPU runs a paper-size step for one batch of 32 far below its capacity, so a campaign's runs train
together rather than taking turns (bench.side_by_side measures what that gains). At a deadline (or
on SIGTERM / Ctrl-C to this process) every run is sent SIGTERM: core.train saves its state after
the step in progress and exits 3, and the same command later resumes it. A run dies with the
process that started it (Linux: PR_SET_PDEATHSIG), so a killed campaign leaves no trainer behind to
race the next one for its folder.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .cli import stop_on_signals
from .errors import EXIT_STOPPED

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
GRACE_SECONDS = 30.0  # how long a stopped run may take to save (a paper-size run: a second or two) before it is killed


@dataclass
class Job:
    """One process: `python -m <argv>`, its output appended to `log`."""
    name: str
    argv: list[str]
    log: Path
    status: str = "waiting"  # waiting, running, done, stopped (resumable), failed, not started
    returncode: int | None = None
    seconds: float = 0.0
    gpu: str | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)
    started: float = 0.0
    signalled: bool = False  # we asked it to stop

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (none on a CPU machine)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and not d.strip().startswith("-")]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


def run_jobs(jobs: list[Job], parallel: int = 0, deadline: float | None = None, progress: bool = True,
             describe: Callable[[Job], str] | None = None, desc: str = "runs") -> list[Job]:
    """Run the jobs, at most `parallel` at once (0: all), each on the least busy visible GPU, until
    they end or `deadline` (time.time()) passes; returns them with their status. On a CPU machine
    each process gets an equal share of the cores (OMP_NUM_THREADS) unless the caller set it."""
    if parallel < 0:
        raise ValueError(f"--jobs must be 0 (all at once) or more, got {parallel}")
    gpus = visible_gpus()
    width = min(parallel or len(jobs), len(jobs)) or 1
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // width))
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    waiting, running = list(jobs), []
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not progress, dynamic_ncols=True)
    try:
        with stop_on_signals("stopping every run (each saves its state)") as asked, logging_redirect_tqdm():
            while waiting or running:
                if asked.is_set() or (deadline is not None and time.time() >= deadline):
                    for job in waiting:
                        job.status = "not started"
                    waiting = []
                    stopping = len(running)
                    stop(running)
                    bar.update(stopping)
                while waiting and len(running) < width:
                    job = waiting.pop(0)
                    load = {g: sum(j.gpu == g for j in running) for g in gpus}
                    job.gpu = min(gpus, key=lambda g: load[g]) if gpus else None
                    start(job, {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1",
                                **({"CUDA_VISIBLE_DEVICES": job.gpu} if job.gpu is not None else {})})
                    running.append(job)
                for job in [j for j in running if j.proc.poll() is not None]:
                    running.remove(job)
                    finish(job)
                    bar.update(1)
                if describe and running:
                    bar.set_postfix_str(", ".join(f"{j.name} {describe(j)}" for j in running), refresh=False)
                bar.refresh()
                time.sleep(0.2 if running else 0)
    except BaseException:  # a second Ctrl-C, or a bug of ours: no run outlives this call
        for job in running:
            job.proc.kill()
            job.proc.wait()
            finish(job)
        raise
    finally:
        bar.close()
    return jobs


def start(job: Job, env: dict[str, str]) -> None:
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "a") as f:
        f.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} python -m {' '.join(job.argv)}\n")
        # its own session: a Ctrl-C reaches it through us, as a SIGTERM
        job.proc = subprocess.Popen([sys.executable, "-m", *job.argv], stdout=f, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, preexec_fn=die_with_parent)
    job.status, job.started = "running", time.time()
    log.info("%s: started%s (log %s)", job.name, f" on GPU {job.gpu}" if job.gpu else "", job.log)


try:
    _prctl = ctypes.CDLL(None).prctl  # looked up here: the child between fork and exec should do little
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies (Linux)."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def stop(running: list[Job]) -> None:
    """SIGTERM each run, wait for it to save, kill what outlives the grace period."""
    for job in running:
        if job.proc.poll() is None:
            job.proc.send_signal(signal.SIGTERM)
            job.signalled = True
    end = time.time() + GRACE_SECONDS
    for job in list(running):
        try:
            job.proc.wait(timeout=max(0.0, end - time.time()))
        except subprocess.TimeoutExpired:
            log.warning("%s: did not stop within %.0f s; killed", job.name, GRACE_SECONDS)
            job.proc.kill()
            job.proc.wait()
        running.remove(job)
        finish(job)


def finish(job: Job) -> None:
    job.returncode, job.seconds = job.proc.returncode, round(time.time() - job.started, 1)
    job.status = {0: "done", EXIT_STOPPED: "stopped"}.get(job.returncode, "failed")
    if job.signalled and job.returncode == -signal.SIGTERM:  # stopped before it could save (e.g. an evaluation)
        job.status = "stopped"
    if job.status == "failed":
        log.error("%s: failed (exit %s) after %.0f s; the end of %s:\n%s", job.name, job.returncode, job.seconds, job.log,
                  job.tail())
    else:
        log.info("%s: %s after %.0f s", job.name, job.status, job.seconds)
