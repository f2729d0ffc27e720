"""The training loop: evaluation bounds, resume after interruption, the lr schedule, the CLIs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from core.library.batching import Dataset
from core.library.checkpoint import load_bundle, run_config_from_dict
from core.library.corpora import read_split
from core.library.errors import CheckpointError, Stopped
from core.library.evaluation import evaluate_split
from core.library.training import Trainer, train

ROOT = Path(__file__).resolve().parents[1]


def test_importance_weighted_bound_is_above_the_elbo(mine_bundle, any_corpora):
    cfg, vocab, model, _ = load_bundle(mine_bundle)
    data = Dataset(read_split("ptb", "valid", any_corpora, limit=300), vocab)
    m = evaluate_split(model, data, batch_size=100, iw_samples=50, seed=3)
    # log p(x) >= IW_50 >= ELBO in expectation: the IW NLL must sit below the ELBO NLL.
    assert m["iw_nll"] < m["nll"]
    assert m["nll"] - m["iw_nll"] < m["kl"] + 1.0  # the gap cannot exceed what q(z|x) can explain
    assert m["iw_ppl"] < m["ppl"]
    assert m["ppl"] == pytest.approx(torch.tensor(m["nll"] * m["sentences"] / m["tokens"]).exp().item())
    assert m["tokens"] == sum(len(s) + 1 for s in read_split("ptb", "valid", any_corpora, limit=300))


def test_importance_weighting_by_length_gives_the_padded_estimate(mine_bundle, any_corpora):
    """The length-grouped IW-NLL against the padded one it replaced (one sample per pass, the
    decoder's plain forward over the padded batch): same draws, same numbers."""
    from core.library.metrics import iw_log_likelihood
    from core.library.models import TextVAE, evaluating

    _, vocab, model, _ = load_bundle(mine_bundle)
    batch = next(Dataset(read_split("ptb", "valid", any_corpora, limit=120), vocab).batches(120))
    assert len(batch.lengths.unique()) > 10  # many lengths, so padding and grouping both matter
    with evaluating(model, 5) as (_, gen):
        _, mu, logvar = model.encode(batch)
        padded = []
        for _ in range(40):
            z = model.sample_z(mu, logvar, 1, gen)
            padded.append(
                -model.reconstruction(batch, z)
                + TextVAE.log_gaussian(z, torch.zeros_like(z), torch.zeros_like(z))
                - TextVAE.log_gaussian(z, mu.unsqueeze(1), logvar.unsqueeze(1))
            )
        reference = torch.logsumexp(torch.cat(padded, 1), 1) - torch.log(torch.tensor(40.0))
    grouped = {}
    for positions in (8192, 50, 1):  # one pass per length; a few pairs per pass; one pair per pass
        with evaluating(model, 5) as (_, gen):
            _, mu, logvar = model.encode(batch)
            grouped[positions] = iw_log_likelihood(model, batch, mu, logvar, 40, gen, positions=positions)
    for p, value in grouped.items():
        assert (value - reference).abs().max() < 1e-4, p


def test_training_log_has_a_line_per_epoch_with_the_promised_fields(mine_bundle, any_corpora):
    lines = [json.loads(ln) for ln in (mine_bundle / "train_log.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == [1, 2]
    for key in (
        "loss",
        "reconstruction",
        "kl",
        "mi",
        "val_nll",
        "val_kl",
        "val_mi",
        "val_au",
        "xi",
        "mine_bound",
        "lr",
        "tokens_per_s",
        "seconds",
    ):
        assert key in lines[-1], key
    assert lines[1]["val_nll"] < lines[0]["val_nll"] + 5  # it is learning, not diverging
    metrics = json.loads((mine_bundle / "metrics.json").read_text())
    for split in ("test", "valid"):  # the whole split (PTB: 3,761 and 3,370 sentences)
        assert metrics[split]["sentences"] == len(read_split("ptb", split, any_corpora))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors")) | {
        f"last.{k}": v for k, v in load_file(str(folder / "resume" / "last.safetensors")).items()
    }


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, different[:5]


@pytest.mark.parametrize(
    "model, settings",
    [
        ("vae-mine", {}),
        ("vae-0.5", {"anneal_epochs": 2.0}),  # the anneal and the word-dropout draws span the break
        ("lagging", {"aggressive_max_steps": 8, "aggressive_window": 3}),  # mode, previous MI, inner batches
    ],
)
def test_resume_ends_with_the_same_parameters(tmp_path, model, settings, any_corpora):
    cfg = tiny_config(model, epochs=3, max_train=600, **settings)
    train(cfg, tmp_path / "straight", str(any_corpora), "cpu", progress=False)
    train(
        replace(cfg, train=replace(cfg.train, epochs=1)), tmp_path / "stopped", str(any_corpora), "cpu", progress=False
    )
    train(cfg, tmp_path / "stopped", str(any_corpora), "cpu", resume=True, progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "stopped")
    log_a = (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "stopped" / "train_log.jsonl").read_text().splitlines()
    strip = lambda ln: {k: v for k, v in json.loads(ln).items() if k not in ("seconds", "tokens_per_s")}
    assert [strip(x) for x in log_a] == [strip(x) for x in log_b]


KILL_ARGS = [
    "--corpus",
    "ptb",
    "--model",
    "vae-mine",
    "--config",
    "tiny",
    "--epochs",
    "3",
    "--max-train",
    "3000",
    "--seed",
    "11",
    "--no-progress",
]


def train_cmd(data: Path, *args: str) -> tuple[list[str], dict]:
    return [sys.executable, "-m", "core.train", *args, "--data-dir", str(data)], {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, corpora) -> Path:
    """KILL_ARGS trained without a break."""
    out = tmp_path_factory.mktemp("whole") / "run"
    cmd, env = train_cmd(corpora, *KILL_ARGS)
    subprocess.run([*cmd, "--out", str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
    return out


def start_and_wait_for_epoch_1(out: Path, data: Path) -> subprocess.Popen:
    cmd, env = train_cmd(data, *KILL_ARGS)
    proc = subprocess.Popen(
        [*cmd, "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and resumable_epoch(out) < 1:
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be interrupted"
    time.sleep(0.5)  # into epoch 2 (its resume state written: the log line comes before it)
    return proc


def resumable_epoch(out: Path) -> int:
    try:
        return json.loads((out / "resume" / "trainer.json").read_text())["loop"]["epoch"]
    except (OSError, ValueError, KeyError):  # not written yet, or being replaced
        return 0


def test_kill_9_mid_epoch_then_resume(tmp_path, whole_run, corpora):
    """A real process killed by SIGKILL in its second epoch resumes and matches an unbroken run."""
    killed = tmp_path / "killed"
    proc = start_and_wait_for_epoch_1(killed, corpora)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((killed / "resume" / "trainer.json").read_text())["loop"]["epoch"] == 1
    cmd, env = train_cmd(corpora, *KILL_ARGS)
    subprocess.run([*cmd, "--out", str(killed), "--resume"], cwd=ROOT, env=env, check=True, capture_output=True)
    assert_same_weights(killed, whole_run)
    assert [json.loads(ln)["epoch"] for ln in (killed / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_sigterm_saves_inside_the_epoch_exits_3_and_resumes_to_the_same_weights(tmp_path, whole_run, corpora):
    """SIGTERM (a deadline's stop) loses no step: a checkpoint after the step in progress, exit
    status 3, and the resumed run continues at the next batch and ends as the unbroken run."""
    from safetensors import safe_open

    stopped = tmp_path / "stopped"
    proc = start_and_wait_for_epoch_1(stopped, corpora)
    cmd, env = train_cmd(corpora, *KILL_ARGS)
    second = subprocess.run(
        [*cmd, "--out", str(stopped), "--resume"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert second.returncode == 2 and "being trained by another process" in second.stderr  # one trainer a folder
    # the check above takes seconds (a second Python starting): stop just after the next epoch's start,
    # so the signal lands inside an epoch however fast this machine is right now
    done = resumable_epoch(stopped)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and resumable_epoch(stopped) == done and done < 2:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "training ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 3, err[-2000:]
    assert "stopped: " in err and "continue with --resume" in err
    with safe_open(str(stopped / "resume" / "partial.safetensors"), "pt") as f:
        at = json.loads(f.metadata()["state"])
    assert at["epoch"] >= 2 and at["batch"] >= 1
    cmd, env = train_cmd(corpora, *KILL_ARGS)
    resumed = subprocess.run(
        [*cmd, "--out", str(stopped), "--resume"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch {at['epoch'] - 1}, at batch {at['batch'] + 1} of epoch {at['epoch']}" in resumed.stderr
    assert_same_weights(stopped, whole_run)


def test_kill_9_inside_an_epoch_resumes_from_its_checkpoint_there(tmp_path, any_corpora):
    """LaggingVAE saving a checkpoint after every step is killed inside an epoch; the resumed run
    starts at the saved batch (inner-loop batches, step counts and running sums included) and ends
    as a run that never stopped nor saved inside epochs."""
    from safetensors import safe_open

    args = [
        "--corpus",
        "ptb",
        "--model",
        "lagging",
        "--config",
        "tiny",
        "--epochs",
        "2",
        "--max-train",
        "1500",
        "--seed",
        "5",
        "--set",
        "aggressive_max_steps=6",
        "--set",
        "aggressive_window=2",
        "--data-dir",
        str(any_corpora),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "core.train", *args]
    killed = tmp_path / "killed"
    partial = killed / "resume" / "partial.safetensors"
    proc = subprocess.Popen(
        [*cmd, "--out", str(killed), "--checkpoint-minutes", "1e-9"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def position() -> dict | None:
        try:
            with safe_open(str(partial), "pt") as f:
                return json.loads(f.metadata()["state"])
        except Exception:  # not written yet, or being replaced
            return None

    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and ((p := position()) is None or p["batch"] < 8):
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = position()
    assert stopped_at["epoch"] == 1 and stopped_at["batch"] >= 8 and stopped_at["extra_batches"] > 0
    resumed = subprocess.run(
        [*cmd, "--out", str(killed), "--resume"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch 0, at batch {stopped_at['batch'] + 1} of epoch 1" in resumed.stderr
    assert not partial.exists()  # the finished epochs replaced it
    subprocess.run(
        [*cmd, "--out", str(tmp_path / "whole"), "--checkpoint-minutes", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    assert_same_weights(killed, tmp_path / "whole")
    strip = lambda ln: [(k, v) for k, v in json.loads(ln).items() if k not in ("seconds", "tokens_per_s")]
    lines = lambda run: [strip(ln) for ln in (run / "train_log.jsonl").read_text().splitlines()]
    assert lines(killed) == lines(tmp_path / "whole")  # same values, keys in the same order
    assert dict(lines(killed)[0])["inner_steps"] > 1  # the epoch's mean spans the break


def test_a_damaged_mid_epoch_checkpoint_falls_back_to_the_last_epoch(tmp_path, caplog, any_corpora):
    """A partial checkpoint that cannot be read (or a temporary file a kill left) costs that work,
    never the run: --resume warns, continues after the last finished epoch and ends as an unbroken run."""
    cfg = tiny_config("vae-mine", epochs=2, max_train=600)
    train(cfg, tmp_path / "straight", str(any_corpora), "cpu", progress=False)
    train(
        replace(cfg, train=replace(cfg.train, epochs=1)), tmp_path / "stopped", str(any_corpora), "cpu", progress=False
    )
    resume_dir = tmp_path / "stopped" / "resume"
    (resume_dir / "partial.safetensors").write_bytes(b"cut short by a power failure")
    (resume_dir / ".partial.safetensors.k1ll3d").write_bytes(b"\0" * 1000)
    with caplog.at_level("WARNING", logger="core.library.resume"):
        train(cfg, tmp_path / "stopped", str(any_corpora), "cpu", resume=True, progress=False)
    assert "mid-epoch checkpoint" in caplog.text and "resuming after the last finished epoch" in caplog.text
    assert sorted(p.name for p in resume_dir.iterdir()) == ["last.safetensors", "trainer.json"]
    assert_same_weights(tmp_path / "straight", tmp_path / "stopped")
    with pytest.raises(ValueError, match="0 or more"):
        Trainer(cfg, tmp_path / "other", str(any_corpora), "cpu", progress=False, checkpoint_minutes=-1)


def test_lr_halves_after_two_epochs_without_improvement_and_reloads_the_best(tmp_path, any_corpora):
    cfg = tiny_config("vae", epochs=4, max_train=200)
    trainer = Trainer(cfg, tmp_path / "run", str(any_corpora), "cpu", progress=False)
    epochs = trainer.epochs()
    trainer.out.mkdir(parents=True)
    trainer.save_best()
    trainer.state.best_nll = -1.0  # nothing can beat this, so every epoch counts as no improvement
    best = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    next(epochs)
    assert trainer.state.lr == 1.0 and trainer.state.bad_epochs == 1
    next(epochs)
    assert trainer.state.lr == 0.5 and trainer.state.halvings == 1 and trainer.state.bad_epochs == 0
    assert all(torch.equal(best[k], v) for k, v in trainer.model.state_dict().items())  # best weights back
    assert all(g["lr"] == 0.5 for opt in trainer.optimizers.values() for g in opt.param_groups)
    trainer.state.halvings = 4
    next(epochs)
    next(epochs)
    assert trainer.state.done  # 5 halvings: stop


def test_energy_network_learns_at_a_tenth_of_the_model_lr(tmp_path, any_corpora):
    trainer = Trainer(tiny_config("vae-mine", max_train=100), tmp_path / "r", str(any_corpora), "cpu", progress=False)
    assert trainer.optimizers["model"].param_groups[0]["lr"] == 1.0
    assert trainer.optimizers["energy"].param_groups[0]["lr"] == pytest.approx(0.1)


def test_existing_run_is_never_overwritten_and_resume_checks_settings(mine_bundle, tmp_path, any_corpora):
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny_config("vae-mine"), mine_bundle, str(any_corpora), "cpu", progress=False)
    with pytest.raises(CheckpointError, match="different run"):
        train(tiny_config("vae-mine", seed=99), mine_bundle, str(any_corpora), "cpu", resume=True, progress=False)


def test_cli_train_and_evaluate_on_a_slice(tmp_path, corpora):
    """On PTB itself: on the synthetic corpus a VAE's posterior is the prior after one epoch, and the
    IW-NLL's margin below the ELBO is within the evaluation's noise."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAE_MINE_DATA": str(corpora)}
    out = tmp_path / "cli"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.train",
            "--corpus",
            "ptb",
            "--model",
            "vae",
            "--config",
            "tiny",
            "--epochs",
            "1",
            "--max-train",
            "300",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "epoch 1" in run.stderr and "val NLL" in run.stderr
    ev = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.evaluate",
            str(out),
            "--split",
            "valid",
            "--iw-samples",
            "5",
            "--max-sentences",
            "200",
            "--no-fppl",
            "--json",
            str(tmp_path / "m.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ev.returncode == 0, ev.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["sentences"] == 200 and m["iw_nll"] < m["nll"] and 0 <= m["au"] <= 8
    assert "NLL (importance-weighted)" in ev.stdout and "MI (batch-wise, He et al. 2019" in ev.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "core.train", "--corpus", "yahoo", "--out", str(tmp_path / "y")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "corpus file not found" in bad.stderr and "yahoo/train.txt" in bad.stderr


def test_time_budget_ends_the_run_and_resume_may_extend_it(tmp_path, any_corpora):
    cfg = tiny_config("vae", epochs=50, max_train=300)
    short = replace(cfg, train=replace(cfg.train, minutes=0.001))  # spent by the first epoch
    out = train(short, tmp_path / "run", str(any_corpora), "cpu", progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["train_seconds"] >= 0.06
    longer = replace(cfg, train=replace(cfg.train, epochs=3, minutes=60.0))
    train(longer, out, str(any_corpora), "cpu", resume=True, progress=False)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3  # the epoch budget ends it now
    saved = json.loads((out / "config.json").read_text())["run"]["train"]
    assert (saved["epochs"], saved["minutes"]) == (3, 60.0)  # the bundle records the budgets it ended under


def test_no_epoch_starts_that_would_end_past_the_time_budget(tmp_path, any_corpora):
    cfg = tiny_config("vae", epochs=1, max_train=300)
    out = train(cfg, tmp_path / "run", str(any_corpora), "cpu", progress=False)
    first = json.loads((out / "metrics.json").read_text())["train_seconds"]
    # 1.5 epochs' time: the budget is not spent, but a second epoch as long as the first would overrun it
    half_more = replace(cfg, train=replace(cfg.train, epochs=50, minutes=1.5 * first / 60))
    train(half_more, out, str(any_corpora), "cpu", resume=True, progress=False)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    room = replace(cfg, train=replace(cfg.train, epochs=2, minutes=60.0))
    train(room, out, str(any_corpora), "cpu", resume=True, progress=False)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


def test_a_finished_run_given_more_epochs_is_not_finished_until_it_ends_again(tmp_path, any_corpora):
    """A campaign counts a run with metrics.json as finished: a resumed run stopped early must not
    keep the metrics of the budget it ended under before."""
    cfg = tiny_config("vae", epochs=1, max_train=300)
    out = train(cfg, tmp_path / "run", str(any_corpora), "cpu", progress=False)
    assert (out / "metrics.json").is_file()
    trainer = Trainer(replace(cfg, train=replace(cfg.train, epochs=3)), out, str(any_corpora), "cpu", progress=False)
    assert trainer.load_resume()
    trainer.stop.set()  # as a SIGTERM would: save after the step in progress
    with pytest.raises(Stopped):
        trainer.run()
    assert not (out / "metrics.json").exists()


def test_the_fast_training_loss_has_the_plain_loss_and_gradients(mine_bundle, any_corpora):
    """The training path (output layer padded to a multiple of 64 rows, the lean softmax-NLL
    backward) against F.cross_entropy over the plain output layer, on a real batch, dropout off."""
    import torch.nn.functional as F

    _, vocab, model, _ = load_bundle(mine_bundle)
    batch = next(Dataset(read_split("ptb", "valid", any_corpora, limit=64), vocab).batches(64))
    model.train()
    model.decoder.drop_in.p = model.decoder.drop_out.p = 0.0
    z = torch.randn(len(batch), model.z_dim, generator=torch.Generator().manual_seed(0))
    results = []
    for fast in (True, False):
        model.zero_grad()
        if fast:
            nll = model.reconstruction(batch, z)
        else:
            logits = model.decoder(batch.inputs, z)
            nll = F.cross_entropy(logits.transpose(1, 2), batch.targets, ignore_index=vocab.pad, reduction="none").sum(
                1
            )
        (nll * torch.linspace(0.5, 1.5, len(nll))).sum().backward()
        results.append((nll.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (fast, fast_grads), (plain, plain_grads) = results
    assert model.decoder.padded_output()[0].size(0) % 64 == 0 < model.decoder.padded_output()[0].size(0) - len(vocab)
    assert (fast - plain).abs().max() < 1e-4
    assert fast_grads.keys() == plain_grads.keys() and "decoder.project.weight" in fast_grads
    for name, grad in fast_grads.items():
        assert (grad - plain_grads[name]).abs().max() <= 1e-5 + 1e-4 * plain_grads[name].abs().max(), name


@pytest.mark.parametrize("clip", [0.5, 1e6])  # the gradient's norm is above the first, below the second
def test_the_cpu_step_folds_clipping_into_sgd_and_updates_as_clip_then_step(mine_bundle, clip, any_corpora):
    """StepContext.update (on the CPU: the clipping factor taken into the lr) against torch's
    clip_grad_norm_ and SGD step on a copy of the same model, on a real batch."""
    from core.library.objectives import StepContext

    batch = None
    models = []
    for _ in range(2):
        _, vocab, model, _ = load_bundle(mine_bundle)
        model.eval()  # no dropout: both copies see the same loss
        models.append(model)
        batch = batch or next(Dataset(read_split("ptb", "valid", any_corpora, limit=64), vocab).batches(64))
    z = torch.randn(len(batch), models[0].z_dim, generator=torch.Generator().manual_seed(0))
    ours, theirs = (
        torch.optim.SGD(
            [
                {"params": m.decoder.project.parameters(), "lr": 0.07},  # two lrs,
                {"params": m.decoder.lstm.parameters(), "lr": 0.7},
            ]
        )  # as BOW's head
        for m in models
    )
    StepContext({"all": ours}, clip, None).update(models[0].reconstruction(batch, z).mean())
    models[1].reconstruction(batch, z).mean().backward()
    norm = torch.nn.utils.clip_grad_norm_([p for g in theirs.param_groups for p in g["params"]], clip)
    theirs.step()
    assert (norm > clip) == (clip == 0.5) and [g["lr"] for g in ours.param_groups] == [0.07, 0.7]
    # the folded path ran: the gradients were left as they were, not rescaled to the clip norm
    grads = [p.grad for g in ours.param_groups for p in g["params"]]
    assert torch.nn.utils.get_total_norm(grads) == pytest.approx(float(norm), rel=1e-5)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert (a - b).abs().max() <= 1e-6 * max(1.0, b.abs().max()), name


def test_uniform_dropout_masks_keep_a_unit_at_rate_1_minus_p_and_unrecorded_configs_keep_bernoulli():
    from core.library.config import PRESETS, RunConfig
    from core.library.models import Dropout, TextVAE

    x = torch.ones(400, 500, requires_grad=True)
    drop = Dropout(0.3).train()
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # 5 standard deviations
    assert torch.allclose(y[kept], torch.tensor(1 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient passes the kept units, scaled alike
    assert drop.eval()(x) is x and Dropout(0.0).train()(x) is x
    assert (Dropout(1.0).train()(x) == 0).all()
    for bad in ({"p": 1.5}, {"p": 0.5, "masks": "gaussian"}):
        with pytest.raises(ValueError, match="dropout"):
            Dropout(**bad)
    old = RunConfig().to_dict()
    del old["model"]["dropout_masks"]
    assert RunConfig().model.dropout_masks == "uniform" and run_config_from_dict(old).model.dropout_masks == "bernoulli"
    decoder = TextVAE(50, replace(PRESETS["tiny"], dropout_masks="bernoulli")).decoder
    assert decoder.drop_in.masks == decoder.drop_out.masks == "bernoulli"
    with pytest.raises(ValueError, match="dropout_masks"):
        run_config_from_dict({**old, "model": {**old["model"], "dropout_masks": "gaussian"}})


def test_command_processes_keep_freed_memory_so_a_large_tensor_reuses_its_pages():
    """What core.commands.cli asks of glibc: a freed 64 MB tensor's pages serve the next one (by default each
    comes back from the kernel as fresh pages, one fault per 4 KB page)."""
    code = (
        "import resource, sys, torch; from core.library.device import keep_freed_memory\n"
        "kept = keep_freed_memory() if sys.argv[1] == 'keep' else False\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(20): torch.ones(16 * 2**20)\n"
        "print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)"
    )
    faults = {}
    for how in ("default", "keep"):
        done = subprocess.run([sys.executable, "-c", code, how], cwd=ROOT, capture_output=True, text=True, check=True)
        kept, faults[how] = done.stdout.split()
        assert kept == str(how == "keep")
    assert int(faults["keep"]) < int(faults["default"]) / 4  # here: about 33,000 against 330,000


def test_the_training_nll_is_exact_where_a_target_probability_underflows():
    """The CPU training path takes log of the target's softmax entry; one below float32's normal
    range (a loss over 87 nats) is scored by log_softmax instead. Loss and gradient against
    F.cross_entropy."""
    import torch.nn.functional as F

    from core.library.models import word_nll

    base = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    base[0, 7] = -200.0  # p(7 | row 0) is about e^-200: 0 in float32
    base[1, 3] = -98.0  # p(3 | row 1) is about e^-102: a subnormal float32, where log loses digits
    targets = torch.tensor([7, 3, 0, 12])  # 0 is the padding id here
    results = []
    for ours in (True, False):
        logits = base.clone().requires_grad_()
        nll = (
            word_nll(logits, targets, 0) if ours else F.cross_entropy(logits, targets, ignore_index=0, reduction="none")
        )
        (nll * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        results.append((nll.detach(), logits.grad))
    (nll, grad), (ref, ref_grad) = results
    assert 190 < nll[0] < 220 and 95 < nll[1] < 110 and nll[2] == 0
    assert torch.allclose(nll, ref, rtol=1e-6, atol=1e-5) and torch.allclose(grad, ref_grad, atol=1e-6)


def test_a_torn_last_log_line_is_dropped_on_resume_and_bundle_files_are_readable(tmp_path, any_corpora, caplog):
    cfg = tiny_config("vae", epochs=1, max_train=300)
    out = tmp_path / "run"
    train(cfg, out, str(any_corpora), "cpu", progress=False)
    with open(out / "train_log.jsonl", "ab") as f:
        f.write(b'{"epoch": 2, "loss": 12')  # killed while appending
    train(replace(cfg, train=replace(cfg.train, epochs=2)), out, str(any_corpora), "cpu", resume=True, progress=False)
    assert [json.loads(x)["epoch"] for x in (out / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    assert "not whole JSON objects" in caplog.text
    for name in ("model.safetensors", "config.json", "vocab.txt", "metrics.json", "train_log.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_recipe_sets_vae_mine_settings_and_a_collapsed_run_says_so(tmp_path, any_corpora):
    from core.commands.train import collapse_warning

    out = tmp_path / "run"
    cmd, env = train_cmd(
        any_corpora,
        "--corpus",
        "ptb",
        "--model",
        "vae-mine",
        "--recipe",
        "reads-code",
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--max-train",
        "200",
        "--no-progress",
        "--out",
        str(out),
    )
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    settings = json.loads((out / "config.json").read_text())["run"]["objective"]["settings"]
    assert (settings["estimator"], settings["negatives"], settings["energy_standardize_z"]) == (
        "infonce",
        "re-encoded",
        True,
    )
    said = collapse_warning({"valid": {"au": 0, "mi": 0.02, "kl": 0.09}}, "vae-mine")
    assert said.startswith("warning: the code collapsed") and "--recipe reads-code" in said
    assert collapse_warning({"valid": {"au": 3, "mi": 1.0, "kl": 2.0}}, "vae-mine", 0.8) is None
    assert "the decoder ignores z (use of z 0.020" in collapse_warning(
        {"valid": {"au": 22, "mi": 0.46}}, "vae-mine", 0.02
    )
    bad = subprocess.run(
        [*train_cmd(any_corpora, "--model", "vae", "--recipe", "reads-code", "--out", str(tmp_path / "x"))[0]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "group of VAE-MINE settings" in bad.stderr


def test_a_full_disk_stops_training_with_one_line_and_loses_nothing(tmp_path, whole_run, corpora):
    """The disk fills in epoch 2 (a real tmpfs, filled to the last byte): training stops with one line
    naming the folder and what to free (exit 2, no traceback), every file already written stays
    whole, and once space is freed --resume ends as the unbroken run."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    assert mounted.returncode == 0, f"this test mounts a small tmpfs and needs root: {mounted.stderr}"
    try:
        run, filler = disk / "run", disk / "filler"
        proc = start_and_wait_for_epoch_1(run, corpora)
        with open(filler, "wb") as f:  # every byte left, while epoch 2 trains
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err[-2000:]
        assert "Traceback" not in err, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: no space left on the disk holding {run}") and "free at least" in last, last
        assert "continue with --resume" in last and not list(run.rglob(".*.*")), sorted(run.rglob("*"))
        filler.unlink()
        cmd, env = train_cmd(corpora, *KILL_ARGS)
        resumed = subprocess.run(
            [*cmd, "--out", str(run), "--resume"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert_same_weights(run, whole_run)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
