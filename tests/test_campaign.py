"""core.campaign: the Table 2 campaign's dry run on the CPU (--config tiny), its deadline and resume;
scripts/campaign_pack.py's pack within a file budget, and core.reproduce's table from the unpacked pack."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.commands import campaign, reproduce
from core.library.errors import EXIT_STOPPED

ROOT = Path(__file__).resolve().parents[1]


def run_flags(data) -> list[str]:
    """core.train's flags for tiny runs on the first 300 sentences of `data`'s PTB."""
    return [
        "--corpus",
        "ptb",
        "--config",
        "tiny",
        "--max-train",
        "300",
        "--seed",
        "3",
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        "--no-progress",
    ]


SMALL = [
    "--systems",
    "lstm-lm,lagging,vae-mine",
    "--alphas",
    "2,4",
    "--jobs",
    "2",
    "--iw-samples",
    "3",
    "--fppl-samples",
    "200",
]
PART = 0.25  # MiB: small enough that the pack needs several parts


def campaign_pack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/campaign_pack.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def run_campaign(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "core.campaign", "run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def done(tmp_path_factory, any_corpora) -> Path:
    root = tmp_path_factory.mktemp("campaign")
    result = run_campaign("--out", str(root / "out"), *SMALL, "--epochs", "1", *run_flags(any_corpora))
    assert result.returncode == 0, result.stderr[-3000:]
    (root / "stdout.txt").write_text(result.stdout)
    packed = campaign_pack("pack", str(root / "out"), str(root / "pack"), "--mib", str(PART))
    assert packed.returncode == 0, packed.stderr[-3000:]
    return root


def test_every_run_trains_side_by_side_and_each_systems_best_is_evaluated(done):
    out = done / "out"
    summary = json.loads((out / "campaign.json").read_text())
    rows = {r["run"]: r for r in summary["runs"]}
    assert list(rows) == ["lstm-lm", "lagging", "vae-mine/alpha-2", "vae-mine/alpha-4"]
    assert summary["complete"] and all(r["finished"] and r["epochs"] == 1 for r in rows.values())
    alphas = {a: json.loads((out / f"vae-mine/alpha-{a}/metrics.json").read_text())["valid"]["nll"] for a in (2, 4)}
    best_alpha = min(alphas, key=alphas.get)
    assert [r for r in rows if rows[r]["best_of_system"]] == ["lstm-lm", "lagging", f"vae-mine/alpha-{best_alpha}"]
    assert json.loads((out / "vae-mine" / "best.json").read_text())["alpha"] == best_alpha
    for name in ("lstm-lm", "lagging", f"vae-mine/alpha-{best_alpha}"):
        ev = json.loads((out / name / "evaluation.json").read_text())
        assert ev["split"] == "test" and ev["settings"]["iw"] == 3 and "fppl" not in ev  # KenLM is the CPU's, later
        assert len(gzip.decompress((out / name / "samples.txt.gz").read_bytes()).decode().splitlines()) == 200
        assert rows[name]["evaluated"] and ("iw_nll" in ev) == (name != "lstm-lm")
    assert not (out / f"vae-mine/alpha-{6 - best_alpha}" / "evaluation.json").exists()
    log_lines = (out / "lagging" / "train_log.jsonl").read_text().splitlines()
    assert json.loads(log_lines[0])["epoch"] == 1 and "finished, evaluated" in (out / "campaign.md").read_text()


def test_the_pack_fits_its_file_budget_and_unpacks_for_reproduce_on_the_cpu(
    done, tmp_path, caplog, capsys, any_corpora
):
    parts = sorted((done / "pack").iterdir())
    assert 2 <= len(parts) <= 8 and all(p.stat().st_size <= PART * 2**20 for p in parts)
    dest = tmp_path / "back"
    assert campaign_pack("unpack", str(done / "pack"), str(dest)).returncode == 0
    best = [r["run"] for r in json.loads((dest / "campaign.json").read_text())["runs"] if r["best_of_system"]]
    for name in best:  # the best bundles come back as float16 copies that name the weights they came from
        ev = json.loads((done / "out" / name / "evaluation.json").read_text())
        assert reproduce.bundle_digest(dest / name) == ev["weights_sha256"]
    other = next(r for r in ("vae-mine/alpha-2", "vae-mine/alpha-4") if r not in best)
    assert (dest / other / "train_log.jsonl").is_file() and not (dest / other / "model.safetensors").exists()
    argv = [
        "--corpus",
        "ptb",
        "--checkpoints",
        str(dest),
        "--iw-samples",
        "3",
        "--fppl-samples",
        "200",
        "--data-dir",
        str(any_corpora),
        "--device",
        "cpu",
    ]
    (dest / "lagging" / "model.safetensors").unlink(missing_ok=True)  # left behind: its evaluation still counts
    with caplog.at_level(logging.INFO):
        assert reproduce.main(argv) == 0
    assert caplog.text.count("figures from evaluation.json") == 3 and "evaluating" not in caplog.text
    table = json.loads((dest / "table2" / "table2.json").read_text())["results"]
    assert list(table) == ["lstm-lm", "lagging", "vae-mine"]
    for name, run in zip(table, best):
        ev = json.loads((done / "out" / run / "evaluation.json").read_text())
        assert table[name]["nll"] == ev["nll"] and table[name].get("iw_nll") == ev.get("iw_nll")
        assert table[name]["fppl"] > 1 and table[name]["rppl"] > 1
    other_settings = [*argv, "--out", str(tmp_path / "t2")]
    other_settings[other_settings.index("--iw-samples") + 1] = "4"  # not what the GPU evaluated: the weights are needed
    assert reproduce.main(other_settings) == 2
    assert "missing weights file" in capsys.readouterr().err


def test_a_pack_too_small_for_a_bundle_leaves_it_out_and_says_so(done, tmp_path, corpora):
    """The 2 x 0.5 MiB budget is sized for PTB's vocabulary (the synthetic corpus's bundles all fit)."""
    out = done / "out"
    best = {
        r["system"]: r["run"] for r in json.loads((out / "campaign.json").read_text())["runs"] if r["best_of_system"]
    }
    packed = campaign_pack("pack", str(out), str(tmp_path / "p"), "--mib", "0.5", "--files", "2")
    assert packed.returncode == 0, packed.stderr[-3000:]
    paths = sorted((tmp_path / "p").iterdir())
    assert len(paths) <= 2 and all(p.stat().st_size <= 0.5 * 2**20 for p in paths)
    assert campaign_pack("unpack", str(tmp_path / "p"), str(tmp_path / "b")).returncode == 0
    shipped = [run for run in best.values() if (tmp_path / "b" / run / "model.safetensors").exists()]
    assert best["vae-mine"] in shipped and len(shipped) < 3  # VAE-MINE first; what did not fit is named
    for run in best.values():
        assert (run not in shipped) == (f"({run}," in packed.stdout)
    (tmp_path / "p" / "campaign.tar.gz.00").unlink()
    missing = campaign_pack("unpack", str(tmp_path / "p"), str(tmp_path / "c"))
    assert missing.returncode == 2 and "one is missing" in missing.stderr


def test_a_deadline_stops_the_runs_which_the_same_command_continues(tmp_path, any_corpora):
    out = tmp_path / "out"
    args = [
        "--out",
        str(out),
        "--systems",
        "vae-mine",
        "--alphas",
        "2,3",
        "--jobs",
        "2",
        "--iw-samples",
        "2",
        "--fppl-samples",
        "50",
        "--decay-from-epoch",
        "1000",
        *run_flags(any_corpora),
    ]  # no schedule's end
    first = run_campaign(*args, "--epochs", "500", "--stop-after", "0.3")
    assert first.returncode == EXIT_STOPPED, first.stderr[-3000:]
    rows = json.loads((out / "campaign.json").read_text())["runs"]
    assert all(r["state"] == "stopped" and not r["finished"] for r in rows), rows
    assert all((out / r["run"] / "resume").is_dir() for r in rows)
    epochs = {r["run"]: r["epochs"] for r in rows}
    second = run_campaign(*args, "--epochs", str(max(epochs.values()) + 1))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in (out / "vae-mine/alpha-2/train.out").read_text()
    rows = json.loads((out / "campaign.json").read_text())["runs"]
    assert all(r["finished"] and r["epochs"] == max(epochs.values()) + 1 for r in rows)
    lines = [json.loads(ln)["epoch"] for ln in (out / "vae-mine/alpha-2/train_log.jsonl").read_text().splitlines()]
    assert lines == list(range(1, max(epochs.values()) + 2))  # no epoch lost or repeated across the stop


def test_the_gpu_script_runs_the_campaign_with_its_flags(tmp_path, any_corpora):
    """scripts/ptb_campaign.sh, the lease's one command, on the CPU with --config tiny (later flags win)."""
    env = {**os.environ, "PYTHON": sys.executable, "VAE_MINE_DATA": str(any_corpora), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            "bash",
            "scripts/ptb_campaign.sh",
            str(tmp_path / "pack"),
            "5",
            "--out",
            str(tmp_path / "out"),
            "--systems",
            "lstm-lm",
            "--iw-samples",
            "2",
            "--fppl-samples",
            "20",
            "--epochs",
            "1",
            *run_flags(any_corpora),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "out" / "lstm-lm" / "config.json").read_text())["run"]
    assert config["config_name"] == "tiny" and "--tf32" in (tmp_path / "out" / "lstm-lm" / "train.out").read_text()
    assert "1 finished, 1 of 1 best runs evaluated" in result.stdout and list((tmp_path / "pack").iterdir())


def test_a_run_dies_with_the_process_that_started_it_and_saves_first(tmp_path, any_corpora):
    """A campaign killed outright (a lease's time limit) leaves no trainer behind: each gets SIGTERM
    from the kernel (PR_SET_PDEATHSIG) and saves its state."""
    out = tmp_path / "run"
    code = (
        "import sys; from core.commands.parallel import Job, run_jobs; "
        "run_jobs([Job('one', sys.argv[1:], __import__('pathlib').Path(sys.argv[-1]) / 'train.out')], progress=False)"
    )
    args = [
        "core.train",
        "--model",
        "vae",
        *run_flags(any_corpora),
        "--epochs",
        "500",
        "--decay-from-epoch",
        "1000",
        "--out",
        str(out),
    ]
    parent = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    trainer = out / "resume" / "trainer.json"
    deadline = time.time() + 120
    while time.time() < deadline and not trainer.exists():
        time.sleep(0.1)
    assert parent.poll() is None and trainer.exists()
    parent.kill()
    parent.wait()
    deadline = time.time() + 60
    while time.time() < deadline and "stopped: " not in (out / "train.out").read_text():
        time.sleep(0.1)
    assert "continue with --resume" in (out / "train.out").read_text()
    assert json.loads(trainer.read_text())["loop"]["epoch"] >= 1


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--jobs", "-1"),
        ("--stop-after", "-2"),
        ("--fppl-samples", "0"),
        ("--systems", "vae,nonsense"),
        ("--alphas", "5:2:1"),
        ("--eval-minutes", "1"),
    ],
)
def test_bad_flags_get_one_clear_line_and_touch_nothing(tmp_path, flag, value, capsys, any_corpora):
    assert campaign.main(["run", "--out", str(tmp_path / "out"), flag, value, *run_flags(any_corpora)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and (flag in err) and err.count("\n") == 1
    assert not any((tmp_path / "out").glob("**/config.json"))


def test_the_pack_script_refuses_a_folder_without_parts_or_a_campaign_and_a_zero_size(tmp_path):
    result = campaign_pack("unpack", str(tmp_path), str(tmp_path / "dest"))
    assert result.returncode == 2 and "no campaign.tar.gz.NN parts" in result.stderr
    result = campaign_pack("pack", str(tmp_path), str(tmp_path / "p"))
    assert result.returncode == 2 and "holds no campaign.json" in result.stderr
    result = campaign_pack("pack", str(tmp_path), str(tmp_path / "p"), "--mib", "0")
    assert result.returncode == 2 and "--mib must be above 0" in result.stderr
