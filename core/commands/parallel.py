"""Independent runs side by side, each a `python -m core.X ...` process writing its output to its
own log file: one scheduling loop (the progress bar, a deadline, Ctrl-C) over two ways of starting
them: `Processes`, on this machine, spread over its visible GPUs, and core.commands.cluster's Ray tasks
(`--ray`), over the machines of a Ray cluster.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..library.errors import EXIT_STOPPED, SettingError
from ..library.signals import stop_on_signals

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the repository (core/commands/parallel.py)
GRACE_SECONDS = 30.0  # how long a stopped run may take to save (a paper-size run: a second or two) before it is killed


@dataclass
class Job:
    """One process: `python -m <argv>`, its output appended to `log`; `done` is a file whose presence
    means the work is finished (a run's metrics.json), so a retried task does not redo it."""

    name: str
    argv: list[str]
    log: Path
    done: Path | None = None
    status: str = "waiting"  # waiting, queued (a cluster's), running, done, stopped (resumable), failed, not started
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


class Runner(Protocol):
    """How jobs are started and stopped: `Processes` here, core.commands.cluster.RayTasks on a Ray cluster."""

    def has_room(self, running: int) -> bool: ...
    def start(self, job: Job) -> None: ...
    def ended(self, running: list[Job]) -> list[Job]: ...  # the jobs that ended since the last call, status set
    def stop(self, running: list[Job]) -> None: ...  # ask each to save and stop; returns when they have
    def kill(self, running: list[Job]) -> None: ...  # at once (a second Ctrl-C, or a bug of ours)


def run_jobs(
    jobs: list[Job],
    runner: Runner | int = 0,
    deadline: float | None = None,
    progress: bool = True,
    describe: Callable[[Job], str] | None = None,
    desc: str = "runs",
) -> list[Job]:
    """Run the jobs with `runner` (an int: `Processes(runner)`, that many at once on this machine, 0
    all) until they end or `deadline` (time.time()) passes; returns them with their status. One bar
    for them all: how many are done, running, waiting and failed, and each running job's `describe`."""
    if isinstance(runner, int):
        runner = Processes(runner, len(jobs))
    waiting, running = list(jobs), []
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not progress, dynamic_ncols=True)
    try:
        with stop_on_signals("stopping every run (each saves its state)") as asked, logging_redirect_tqdm():
            while waiting or running:
                if asked.is_set() or (deadline is not None and time.time() >= deadline):
                    for job in waiting:
                        job.status = "not started"
                    waiting = []
                    runner.stop(running)
                    bar.update(len(running))
                    running = []
                while waiting and runner.has_room(len(running)):
                    job = waiting.pop(0)
                    runner.start(job)
                    running.append(job)
                for job in runner.ended(running):
                    running.remove(job)
                    bar.update(1)
                bar.set_postfix_str(
                    counts(jobs)
                    + "".join(f"; {j.name} {describe(j)}" for j in running if describe and j.status == "running"),
                    refresh=False,
                )
                bar.refresh()
                time.sleep(0.2 if running else 0)
    except BaseException:  # a second Ctrl-C, or a bug of ours: no run outlives this call
        runner.kill(running)
        raise
    finally:
        bar.close()
    return jobs


def counts(jobs: list[Job]) -> str:
    """'2 done, 1 running, 3 waiting, 1 failed' (the states that occur)."""
    n: dict[str, int] = {}
    for j in jobs:
        state = "waiting" if j.status == "queued" else j.status
        n[state] = n.get(state, 0) + 1
    order = ("done", "running", "waiting", "stopped", "failed", "not started")
    return ", ".join(f"{n[s]} {s}" for s in order if n.get(s))


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (none on a CPU machine)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and not d.strip().startswith("-")]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def child_env(threads: str, **extra: str) -> dict[str, str]:
    """A run's environment: this project importable, its thread count, unbuffered output."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1", **extra}


def spawn(argv: list[str], log_file, env: dict[str, str]) -> subprocess.Popen:
    """`python -m argv` in its own session (a Ctrl-C reaches it through us, as a SIGTERM), dying with us."""
    return subprocess.Popen(
        [sys.executable, "-m", *argv],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


class Processes:
    """At most `parallel` jobs at once (0: all) as child processes of this one, each on the least busy
    visible GPU; on a CPU machine each gets an equal share of the cores (OMP_NUM_THREADS) unless the
    caller set it."""

    def __init__(self, parallel: int, n_jobs: int):
        if parallel < 0:
            raise SettingError(f"--jobs must be 0 (all at once) or more, got {parallel}")
        self.gpus = visible_gpus()
        self.width = min(parallel or n_jobs, n_jobs) or 1
        self.threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // self.width))
        self.running: list[Job] = []

    def has_room(self, running: int) -> bool:
        return running < self.width

    def start(self, job: Job) -> None:
        load = {g: sum(j.gpu == g for j in self.running) for g in self.gpus}
        job.gpu = min(self.gpus, key=lambda g: load[g]) if self.gpus else None
        job.log.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log, "a") as f:
            f.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} python -m {' '.join(job.argv)}\n")
            job.proc = spawn(
                job.argv, f, child_env(self.threads, **({"CUDA_VISIBLE_DEVICES": job.gpu} if job.gpu else {}))
            )
        job.status, job.started = "running", time.time()
        self.running.append(job)
        log.info("%s: started%s (log %s)", job.name, f" on GPU {job.gpu}" if job.gpu else "", job.log)

    def ended(self, running: list[Job]) -> list[Job]:
        out = [j for j in running if j.proc.poll() is not None]
        for job in out:
            self.finish(job)
        return out

    def stop(self, running: list[Job]) -> None:
        """SIGTERM each run, wait for it to save, kill what outlives the grace period."""
        for job in running:
            if job.proc.poll() is None:
                job.proc.send_signal(signal.SIGTERM)
                job.signalled = True
        end = time.time() + GRACE_SECONDS
        for job in running:
            try:
                job.proc.wait(timeout=max(0.0, end - time.time()))
            except subprocess.TimeoutExpired:
                log.warning("%s: did not stop within %.0f s; killed", job.name, GRACE_SECONDS)
                job.proc.kill()
                job.proc.wait()
            self.finish(job)

    def kill(self, running: list[Job]) -> None:
        for job in running:
            job.proc.kill()
            job.proc.wait()
            self.finish(job)

    def finish(self, job: Job) -> None:
        if job in self.running:
            self.running.remove(job)
        finish(job, job.proc.returncode)


try:
    _prctl = ctypes.CDLL(None).prctl  # looked up here: the child between fork and exec should do little
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies (Linux)."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def finish(job: Job, returncode: int | None, reason: str = "") -> None:
    """The job's status from its exit status (`reason` says why a job without one failed)."""
    job.returncode, job.seconds = returncode, round(time.time() - job.started, 1)
    job.status = {0: "done", EXIT_STOPPED: "stopped"}.get(returncode, "failed")
    if job.signalled and returncode == -signal.SIGTERM:  # stopped before it could save (e.g. an evaluation)
        job.status = "stopped"
    if job.status == "failed":
        log.error(
            "%s: failed (%s) after %.0f s; the end of %s:\n%s",
            job.name,
            reason or f"exit {returncode}",
            job.seconds,
            job.log,
            job.tail(),
        )
    else:
        log.info("%s: %s after %.0f s", job.name, job.status, job.seconds)
