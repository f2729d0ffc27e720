"""core.commands.cluster: sweeps, campaigns and Table 2 evaluations as tasks of a real local Ray cluster
(`--ray`), checked against the one-machine path (core.commands.parallel's processes) run by the same
commands; a worker killed mid-run; Ctrl-C; the flags a cluster refuses."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DATA
from safetensors.torch import load_file

from core.library.errors import EXIT_STOPPED

pytestmark = pytest.mark.usefixtures("corpora", "ray_installed")  # reads the corpora (see conftest)

ROOT = Path(__file__).resolve().parents[1]
# one thread a run on both paths: the same arithmetic, so the same figures to the bit
RUN = [
    "--corpus",
    "ptb",
    "--config",
    "tiny",
    "--max-train",
    "1000",
    "--seed",
    "3",
    "--data-dir",
    str(DATA),
    "--device",
    "cpu",
    "--no-progress",
]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def ray_installed(corpora) -> None:
    """Ray is optional (requirements-cluster.txt): where the corpora are (CI), its absence fails."""
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("Ray is not installed: bash scripts/install_cluster.sh (requirements-cluster.txt)")


def command(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *argv], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def table(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("run", "train_seconds")} for row in csv.DictReader(open(path))]


def weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


def wait_for(predicate, seconds: float, what: str) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def epochs(folder: Path) -> list[int]:
    try:
        return [json.loads(ln)["epoch"] for ln in (folder / "train_log.jsonl").read_text().splitlines()]
    except OSError:
        return []


@pytest.fixture(scope="module")
def one_machine(tmp_path_factory) -> Path:
    """The alpha sweep on this machine (two processes at once), with a check that Ray was never imported."""
    out = tmp_path_factory.mktemp("one-machine") / "sweep"
    code = (
        "import sys; from core import sweep; code = sweep.main(sys.argv[1:]); "
        "assert 'ray' not in sys.modules, 'Ray imported without --ray'; sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--alphas", "2,4", "--out", str(out), "--jobs", "2", "--epochs", "2", *RUN],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_a_ray_sweep_gives_the_one_machine_table_and_weights(one_machine, tmp_path):
    out = tmp_path / "sweep"
    result = command("core.sweep", "--alphas", "2,4", "--out", str(out), "--ray", "--epochs", "2", *RUN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Ray cluster local: 1 node(s), {os.cpu_count()} CPUs, 0 GPUs" in result.stderr
    assert table(out / "sweep.csv") == table(one_machine / "sweep.csv")
    for alpha in ("2", "4"):
        assert same_weights(out / f"alpha-{alpha}", one_machine / f"alpha-{alpha}")
        assert re.search(r"== attempt on \S+ pid \d+", (out / f"alpha-{alpha}" / "train.out").read_text())
    assert (
        json.loads((out / "best.json").read_text())["alpha"]
        == json.loads((one_machine / "best.json").read_text())["alpha"]
    )


def test_a_killed_worker_is_retried_and_resumes_to_the_unbroken_runs_weights(one_machine, tmp_path):
    out = tmp_path / "sweep"
    proc = start("core.sweep", "--alphas", "2", "--out", str(out), "--ray", "--epochs", "2", *RUN)
    run = out / "alpha-2"
    wait_for(lambda: len(epochs(run)) >= 1 or proc.poll() is not None, 300, "the first epoch")
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    worker = int(re.search(r"== attempt on \S+ pid (\d+)", (run / "train.out").read_text()).group(1))
    os.kill(worker, signal.SIGKILL)  # the Ray worker process running the task, not the trainer
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    text = (run / "train.out").read_text()
    assert text.count("== attempt on ") == 2 and "resuming" in text and "state saved" in text
    assert epochs(run) == [1, 2]  # no epoch lost or repeated
    assert same_weights(run, one_machine / "alpha-2")


def test_ctrl_c_stops_every_task_each_saving_and_the_same_command_continues(tmp_path):
    out = tmp_path / "sweep"
    argv = ["core.sweep", "--alphas", "2,4", "--out", str(out), "--ray", "--decay-from-epoch", "1000", *RUN]
    proc = start(*argv, "--epochs", "500")  # no schedule's end: it runs until stopped
    runs = [out / "alpha-2", out / "alpha-4"]
    wait_for(lambda: all(epochs(r) for r in runs) or proc.poll() is not None, 300, "an epoch of each run")
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_STOPPED, err[-3000:]
    assert "the same command continues them" in err
    for r in runs:
        said = (r / "train.out").read_text()
        assert (r / "resume").is_dir() and "state saved" in said, f"{r.name}:\n{said[-1500:]}\n{err[-3000:]}"
        assert said.rstrip().endswith(f"== exit {EXIT_STOPPED}"), f"{r.name}:\n{said[-1500:]}\n{err[-3000:]}"
    left = subprocess.run(["pgrep", "-f", f"{out}/alpha"], capture_output=True, text=True).stdout.split()
    assert not left, f"trainers still running: {left}"
    last = max(max(epochs(r)) for r in runs)
    again = command(*argv, "--epochs", str(last + 1))
    assert again.returncode == 0, again.stderr[-3000:]
    for r in runs:
        assert epochs(r) == list(range(1, last + 2)) and "resuming" in (r / "train.out").read_text()


def campaign_figures(out: Path) -> dict:
    summary = json.loads((out / "campaign.json").read_text())
    figures = {}
    for row in summary["runs"]:
        ev = json.loads((out / row["run"] / "evaluation.json").read_text())
        figures[row["run"]] = (
            {k: row[k] for k in ("finished", "epochs", "best_of_system", "evaluated")},
            {k: ev[k] for k in ("nll", "kl", "mi", "au", "iw_nll") if k in ev},
        )
    return figures


def test_a_ray_campaign_of_two_systems_gives_the_one_machine_campaign(tmp_path):
    args = ["--systems", "lstm-lm,vae-0.5", "--iw-samples", "3", "--fppl-samples", "200", "--epochs", "1", *RUN]
    here = command("core.campaign", "run", "--out", str(tmp_path / "here"), "--jobs", "2", *args)
    assert here.returncode == 0, here.stderr[-3000:]
    ray = command("core.campaign", "run", "--out", str(tmp_path / "ray"), "--ray", *args)
    assert ray.returncode == 0, ray.stderr[-3000:]
    one, spread = campaign_figures(tmp_path / "here"), campaign_figures(tmp_path / "ray")
    assert list(spread) == ["lstm-lm", "vae-0.5"] and spread == one
    assert all(state["evaluated"] for state, _ in spread.values())


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--ray", "10.0.0.1:6379", "--out", "runs/relative"], "absolute path"),
        (["--ray", "10.0.0.1:6379", "--out", "/tmp/cluster-sweep"], "each machine's own"),
        (["--ray", "--cpus-per-run", "0", "--out", "/tmp/cluster-sweep"], "--cpus-per-run"),
    ],
)
def test_a_cluster_refuses_what_its_nodes_cannot_share_before_starting(flags, message):
    started = time.time()
    result = command("core.sweep", "--alphas", "2", *flags, "--epochs", "1", *RUN, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and time.time() - started < 60  # one line, no cluster joined or started
    assert not Path("/tmp/cluster-sweep/alpha-2/config.json").exists()


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A Ray head started as a user starts one (`ray start --head`, Ray's default token authentication),
    stopped with the test; with a shared folder outside /tmp (which a cluster refuses as node-local)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shared = Path.home() / ".cache" / "vae-mine" / f"pytest-cluster-{os.getpid()}"
    env = {**ENV, "RAY_AUTH_MODE": "token"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--port",
            str(port),
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"127.0.0.1:{port}", shared, env
    finally:
        proc.send_signal(signal.SIGTERM)  # --block: its processes stop with it
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(shared, ignore_errors=True)


def test_reproduce_on_a_started_cluster_gives_the_one_machine_table(one_machine, head):
    address, shared, env = head
    shutil.copytree(one_machine, shared / "sweep", symlinks=True)
    argv = [
        "core.reproduce",
        "--corpus",
        "ptb",
        "--checkpoints",
        str(shared / "sweep"),
        "--iw-samples",
        "5",
        "--fppl-samples",
        "300",
        "--max-sentences",
        "200",
        "--data-dir",
        str(DATA),
        "--device",
        "cpu",
    ]
    here = subprocess.run(
        [sys.executable, "-m", *argv, "--out", str(shared / "here"), "--jobs", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert here.returncode == 0, here.stderr[-3000:]
    end = time.time() + 60  # the head takes a few seconds to answer
    while True:
        spread = subprocess.run(
            [sys.executable, "-m", *argv, "--out", str(shared / "ray"), "--ray", address],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if spread.returncode == 0 or "nothing answers there" not in spread.stderr or time.time() > end:
            break
        time.sleep(2)
    assert spread.returncode == 0, spread.stderr[-3000:]
    assert f"Ray cluster {address}: 1 node(s), 2 CPUs" in spread.stderr
    one = json.loads((shared / "here" / "table2.json").read_text())["results"]
    ray = json.loads((shared / "ray" / "table2.json").read_text())["results"]
    assert list(ray) == list(one) == ["vae-mine"]
    figures = lambda m: {k: v for k, v in m.items() if not k.endswith("seconds")}  # noqa: E731 (timings differ)
    assert figures(ray["vae-mine"]) == figures(one["vae-mine"]) and "fppl" in ray["vae-mine"]
    assert "== attempt on " in (shared / "ray" / "evals" / "vae-mine" / "train.out").read_text()
    assert not list(shared.glob("**/.ray-check-*"))  # the check that every node sees the folders cleans up
