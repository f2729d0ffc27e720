"""Runs as Ray tasks (`--ray [ADDRESS]` of core.sweep, core.campaign run and core.reproduce): each
job, a `python -m core.X` process, runs inside a Ray task that asks for one GPU when the cluster
has GPUs (else --cpus-per-run CPUs), so the runs spread over every machine of the cluster.

Without an address Ray starts a cluster on this machine for the command's length; with one
(`ray start --head` on one machine, `ray start --address HEAD:6379` on the others) it joins it. The
run folders, the corpora and this checkout must lie where every node sees them (a shared file
system): a task writes its run's files and log there, and this process reads the logs for the
progress bar. A task whose worker or node dies is retried (--max-retries) and resumes from the
run's last saved state (core.train --resume), after the attempt before it has let go of the run's
folder; a finished run is not trained again. Ctrl-C or a deadline cancels every task: each sends
its run SIGTERM and waits for it to save, so the same command continues.

Ray is an optional dependency (requirements-cluster.txt), imported only when --ray is given.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..library.corpora import data_dir
from ..library.errors import SettingError, VaeMineError
from .parallel import GRACE_SECONDS, ROOT, Job, Runner, child_env, finish, spawn

log = logging.getLogger(__name__)
LOCAL = "local"  # --ray without an address: a cluster on this machine, for the command's length
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")  # folders each machine has its own of
START, EXIT = "== attempt on ", "== exit "  # the lines a task writes into its job's log around the run


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray cluster (optional: pip install -r requirements-cluster.txt)")
    g.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help="run each job as a Ray task: alone, on a Ray cluster started on this machine; with HEAD:PORT "
        "(or 'auto'), on that cluster, whose nodes must all see --out and the corpora. --jobs does "
        "not apply: the cluster's free GPUs / CPUs decide how many run at once",
    )
    g.add_argument(
        "--cpus-per-run",
        type=int,
        default=1,
        help="CPUs each task asks for (and its thread count) when "
        "the cluster has no GPUs (default 1); a task on a GPU cluster asks for one GPU and this many CPUs",
    )
    g.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="times a task whose worker or node died is started "
        "again (default 3); a run that fails by itself is not retried",
    )


@contextmanager
def runner_for(args: argparse.Namespace, folders: tuple[str, ...] = ("out",)) -> Iterator[Runner | int]:
    """The runner a command's jobs use: `args.jobs` (core.commands.parallel.Processes) without --ray, else a
    RayTasks on the cluster for the block's length. With --ray the folders named by `folders` (of
    args) and the corpus folder become absolute paths in args (a task runs in its own working
    folder, a remote one without this shell's $VAE_MINE_DATA); with an address, every node must see them."""
    if getattr(args, "ray", None) is None:
        yield args.jobs
        return
    if args.cpus_per_run < 1 or args.max_retries < 0:
        raise SettingError(
            f"--cpus-per-run must be 1 or more and --max-retries 0 or more, got {args.cpus_per_run} and "
            f"{args.max_retries}"
        )
    given = [name for name in folders if getattr(args, name, None) is not None]
    if args.ray != LOCAL:
        check_paths_shareable(
            [*(Path(getattr(args, n)) for n in given), *([Path(args.data_dir)] if args.data_dir else [])]
        )
    for name in given:
        setattr(args, name, Path(getattr(args, name)).absolute())
    args.data_dir = str(data_dir(args.data_dir).absolute())
    tasks = RayTasks(args.ray, args.cpus_per_run, args.max_retries)
    try:
        if args.ray != LOCAL:
            tasks.check_every_node_sees([getattr(args, n) for n in given], Path(args.data_dir))
        yield tasks
    finally:
        tasks.close()


def check_paths_shareable(paths: list[Path]) -> None:
    """A cluster's nodes cannot share a relative path (each task has its own working folder) nor a
    folder each machine has its own of."""
    for path in paths:
        if not path.is_absolute():
            raise SettingError(
                f"{path}: with --ray ADDRESS give an absolute path on storage every node mounts (each "
                f"node resolves a relative one in its own working folder)"
            )
        if any(str(path) == d or str(path).startswith(d + "/") for d in NODE_LOCAL):
            raise SettingError(
                f"{path}: {path.parts[1]} is each machine's own; with --ray ADDRESS the runs' folders and the "
                f"corpora must be on storage every node mounts (NFS or the like)"
            )


def reachable(address: str) -> None:
    """HOST:PORT answers (Ray itself retries an unreachable head for minutes); 'auto' is Ray's to find."""
    host, sep, port = address.rpartition(":")
    if address == "auto":
        return
    if not sep or not port.isdigit():
        raise SettingError(f"--ray {address!r}: expected HEAD:PORT (as `ray start --head` prints it) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise VaeMineError(
            f"--ray {address}: nothing answers there ({e.strerror or e}); is `ray start --head` running on "
            f"that machine, and is the port open?"
        ) from None


class StopFlag:
    """The driver's word to its tasks (a Ray actor of no CPU): which runs must stop. A task asks it
    every second; Ray's own cancel, an interrupt raised inside the task, was seen not to arrive
    within 40 s in full test runs on the project's machine, so it is only the last resort."""

    def __init__(self):
        self.names: set[str] = set()

    def stop(self, names: list[str]) -> None:
        self.names.update(names)

    def stopped(self, name: str) -> bool:
        return name in self.names


def asked_to_stop(flag, name: str) -> bool:
    import ray

    try:
        return bool(ray.get(flag.stopped.remote(name), timeout=10))
    except Exception:  # the actor is gone or slow: keep running; force-cancel remains
        return False


def run_task(argv: list[str], log_path: str, threads: str, done: str | None, flag=None, name: str | None = None) -> int:
    """Inside a Ray worker: `python -m argv` with its output appended to the job's log; returns its
    exit status. Told to stop (the driver's StopFlag names it, or Ray's cancel), it stops the run as
    core.commands.parallel does: SIGTERM, then a grace period to save."""
    log_file = Path(log_path)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if done and Path(done).exists():  # a retry of a task whose run had already finished
        with open(log_file, "a") as f:
            f.write(f"{START}{socket.gethostname()} pid {os.getpid()}: {done} exists, nothing to do\n{EXIT}0\n")
        return 0
    wait_for_folder(log_file.parent)
    with open(log_file, "a") as f:
        f.write(
            f"{START}{socket.gethostname()} pid {os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            f"python -m {' '.join(argv)}\n"
        )
        f.flush()
        proc = spawn(argv, f, child_env(threads))
        try:
            code, polls = None, 0
            while code is None:  # in steps: ray.cancel's KeyboardInterrupt arrives between them, not inside a wait
                try:
                    code = proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    polls += 1
                    if flag is not None and polls % 2 == 0 and asked_to_stop(flag, name):
                        raise KeyboardInterrupt from None
        except KeyboardInterrupt:  # the driver's StopFlag, or ray.cancel
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        f.write(f"{EXIT}{code}\n")
    return code


def wait_for_folder(folder: Path) -> None:
    """Block until no trainer holds the run folder's lock (core.train's): the attempt before a retry,
    SIGTERMed when its worker died, may still be saving."""
    lock = folder / ".lock"
    if lock.exists():
        with open(lock) as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            fcntl.flock(f, fcntl.LOCK_UN)


def log_since(job: Job, since: int) -> str:
    """What the job's log gained after byte `since` (its attempts since it was submitted); '' if unreadable."""
    try:
        with open(job.log, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def last_exit(job: Job, since: int) -> int | None:
    """The exit status the job's last attempt wrote into its log after byte `since`, if any."""
    codes = [ln[len(EXIT) :].strip() for ln in log_since(job, since).splitlines() if ln.startswith(EXIT)]
    try:
        return int(codes[-1]) if codes else None
    except ValueError:
        return None


def started_since(job: Job, since: int) -> bool:
    return START in log_since(job, since)


class RayTasks:
    """Every job submitted at once as a Ray task; the cluster's resources decide how many run."""

    def __init__(self, address: str, cpus_per_run: int, max_retries: int):
        import ray

        self.ray = ray
        started = time.time()
        kwargs = dict(
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        )  # the workers import core (this checkout)
        if address == LOCAL:
            ray.init(address="local", num_cpus=os.cpu_count(), **kwargs)
        else:
            reachable(address)
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise VaeMineError(
                    f"--ray {address}: cannot join the cluster ({e}); start it with `ray start --head` and "
                    f"give its address (HEAD:6379); a cluster with token authentication (Ray's default "
                    f"since 2.59) needs RAY_AUTH_MODE=token here too, and its token"
                ) from None
        resources = ray.cluster_resources()
        self.gpus = resources.get("GPU", 0) >= 1
        self.threads = str(cpus_per_run)
        self.task = ray.remote(run_task).options(
            num_cpus=cpus_per_run, num_gpus=1 if self.gpus else 0, max_retries=max_retries, retry_exceptions=False
        )
        self.flag = ray.remote(StopFlag).options(num_cpus=0).remote()
        self.refs: dict[str, object] = {}
        self.since: dict[str, int] = {}
        log.info(
            "Ray cluster %s: %d node(s), %g CPUs, %g GPUs (joined in %.1f s); each run asks for %s",
            address,
            len(ray.nodes()),
            resources.get("CPU", 0),
            resources.get("GPU", 0),
            time.time() - started,
            "1 GPU" if self.gpus else f"{cpus_per_run} CPU(s)",
        )

    def check_every_node_sees(self, folders: list[Path], data: Path) -> None:
        """A task on each alive node must see a marker written here in each of `folders` (created if
        missing), and the same listing of the corpus folder `data` as this machine."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        markers = []
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            marker = folder / f".ray-check-{uuid.uuid4().hex}"
            marker.write_text("")
            markers.append(str(marker))
        listing = sorted(os.listdir(data)) if data.is_dir() else None

        def look(names: list[str], corpora: str) -> list[bool]:
            return [os.path.exists(n) for n in names] + [
                (sorted(os.listdir(corpora)) if os.path.isdir(corpora) else None) == listing
            ]

        probe = self.ray.remote(look)
        try:
            nodes = [n for n in self.ray.nodes() if n.get("Alive")]
            seen = self.ray.get(
                [
                    probe.options(
                        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                    ).remote(markers, str(data))
                    for n in nodes
                ],
                timeout=120,
            )
        finally:
            for marker in markers:
                Path(marker).unlink(missing_ok=True)
        for node, flags in zip(nodes, seen):
            blind = [str(p) for p, ok in zip([*folders, data], flags) if not ok]
            if blind:
                raise VaeMineError(
                    f"node {node.get('NodeManagerAddress')} does not see {', '.join(blind)} as this machine "
                    f"does: with --ray ADDRESS the runs' folders and the corpora must be on storage every "
                    f"node mounts at the same path"
                )

    def has_room(self, running: int) -> bool:
        return True  # Ray queues what the cluster cannot run yet

    def start(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        self.since[job.name] = job.log.stat().st_size if job.log.exists() else 0
        self.refs[job.name] = self.task.remote(
            job.argv, str(job.log), self.threads, str(job.done) if job.done else None, self.flag, job.name
        )
        job.status, job.started = "queued", time.time()

    def ended(self, running: list[Job]) -> list[Job]:
        refs = [self.refs[j.name] for j in running]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
        ready = set(ready)
        out = []
        for job in running:
            if self.refs[job.name] in ready:
                self.settle(job)
                out.append(job)
            elif job.status == "queued" and started_since(job, self.since[job.name]):
                job.status = "running"
                log.info("%s: started (log %s)", job.name, job.log)
        return out

    def settle(self, job: Job) -> None:
        from ray.exceptions import RayError, TaskCancelledError

        try:
            finish(job, self.ray.get(self.refs[job.name], timeout=GRACE_SECONDS))
        except TaskCancelledError:  # its run's own exit status says whether it saved
            code = last_exit(job, self.since[job.name])
            if code is None:
                job.status = "not started" if not started_since(job, self.since[job.name]) else "stopped"
                job.seconds = round(time.time() - job.started, 1)
                log.info("%s: %s", job.name, job.status)
            else:
                finish(job, code)
        except RayError as e:  # its worker or node died more often than --max-retries allows
            finish(job, None, f"the Ray task failed: {str(e).splitlines()[0]}")

    def stop(self, running: list[Job]) -> None:
        """Tell every task to stop (StopFlag): each SIGTERMs its run and waits for it to save
        (core.commands.parallel's grace); a task that outlives that is killed with its worker (its run,
        SIGTERMed by the kernel, still saves)."""
        refs = [self.refs[j.name] for j in running]
        for job in running:
            job.signalled = True
        try:
            self.ray.get(self.flag.stop.remote([j.name for j in running]), timeout=10)
        except Exception as e:  # no flag to raise: Ray's own cancel, then the force below
            log.warning("could not tell the tasks to stop (%s); cancelling them through Ray", e)
            for ref in refs:
                self.ray.cancel(ref)
        _, late = self.ray.wait(refs, num_returns=len(refs), timeout=GRACE_SECONDS + 10)
        for job in running:
            if self.refs[job.name] in late:
                log.warning(
                    "%s: its task had not stopped %d s after the cancel; its worker is killed",
                    job.name,
                    GRACE_SECONDS + 10,
                )
        for ref in late:
            self.ray.cancel(ref, force=True)
        for job in running:
            self.settle(job)

    def kill(self, running: list[Job]) -> None:
        for job in running:
            self.ray.cancel(self.refs[job.name], force=True)  # the worker dies; its run gets SIGTERM and saves
        for job in running:
            self.settle(job)

    def close(self) -> None:
        self.ray.shutdown()
