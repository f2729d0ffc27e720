"""One home for each fact: an objective is one file (a toy one defined here trains, exports with a
card and gets its label in the explorer), settings are checked against the chosen objective, and
bundles written by format 1 (before objectives owned their settings) load, resume and export
exactly as they trained."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import tiny_config

import core
from core.commands.export import export
from core.library.checkpoint import read_config
from core.library.errors import CheckpointError
from core.library.objectives import objective_class, registry, table2
from core.library.objectives.base import Objective
from core.library.training import train
from explorer.context import Context

FIXTURES = Path(__file__).parent / "fixtures" / "format1"


def test_set_is_checked_against_the_chosen_objectives_settings():
    mine = objective_class("vae-mine")
    assert mine.settings_from_strings(["alpha=4.5", "negatives=all-pairs"]).settings.alpha == 4.5
    with pytest.raises(ValueError, match="vae-mine has the settings alpha, .*negatives"):
        mine.settings_from_strings(["aggressive_window=3"])  # a lagging setting
    with pytest.raises(ValueError, match="alpha must be a float"):
        mine.settings_from_strings(["alpha=lots"])
    with pytest.raises(ValueError, match="negatives must be one of roll, all-pairs, queue"):
        mine.settings_from_strings(["negatives=some"])
    with pytest.raises(ValueError, match="lstm-lm has the settings none"):
        objective_class("lstm-lm").settings_from_strings(["alpha=2"])
    with pytest.raises(ValueError, match="energy_standardize_h must be true or false"):
        mine.settings_from_strings(["energy_standardize_h=maybe"])


def test_every_objective_owns_its_name_display_name_and_source():
    for name, cls in registry().items():
        assert cls.name == name and cls.display_name and cls.source
        cls.config()  # its defaults build
    assert [objective_class(n).display_name for n in table2()] == [
        "LSTM-LM",
        "VAE-0.5",
        "VAE-BOW",
        "InfoVAE",
        "CyclicalVAE",
        "LaggingVAE",
        "VAE-MINE",
    ]


@dataclass(frozen=True)
class ToySettings:
    kl_scale: float = 0.5


class ToyVAE(Objective):
    """Defined here only: nothing else in the project lists it."""

    name = "toy-test"
    display_name = "Toy half-KL VAE"
    source = "tests/test_layout.py"
    Settings = ToySettings

    def kl_weight(self) -> float:
        return self.settings.kl_scale


def test_a_toy_objective_trains_exports_with_a_card_and_gets_its_explorer_label(tmp_path, corpora):
    run = train(
        tiny_config("toy-test", epochs=1, max_train=300, kl_scale=0.25),
        tmp_path / "run",
        str(corpora),
        "cpu",
        progress=False,
    )
    assert read_config(run)[0].objective.settings == ToySettings(0.25)
    export(run, tmp_path / "ckpts" / "toy", data_dir=str(corpora), with_atlas=False)
    card = (tmp_path / "ckpts" / "toy" / "README.md").read_text()
    assert "# Toy half-KL VAE on ptb" in card and "kl_scale=0.25" in card and "tests/test_layout.py" in card
    ctx = Context(tmp_path / "ckpts", str(corpora), tmp_path / "cache")
    assert ctx.label("toy") == "Toy half-KL VAE · ptb (toy)"
    assert core.load(tmp_path / "ckpts" / "toy").display_name == "Toy half-KL VAE"


@pytest.mark.parametrize("name", ["vae-mine", "lagging"])
def test_format1_bundle_loads_resumes_and_exports_as_it_trained(name, tmp_path, corpora):
    """The fixture holds epoch 1 of a run by the format-1 code; <name>.epoch2.json is the log line
    that code wrote when it resumed the same folder to epoch 2."""
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    saved, _ = read_config(run)
    assert saved.train.decay_from_epoch == 1  # format 1 halved from epoch 1
    if name == "lagging":
        assert saved.objective.settings.anneal_epochs == 0  # and trained LaggingVAE without a KL anneal
    core.load(run)
    # Resumed with today's command line (today's defaults): the run's own format-1 settings decide.
    today = tiny_config(
        name,
        epochs=2,
        max_train=300,
        seed=3,
        decay_from_epoch=16,
        **({"aggressive_max_steps": 5} if name == "lagging" else {}),
    )
    cli = replace(today, config_name="micro", model=saved.model, train=replace(today.train, eval_batch_size=128))
    train(cli, run, str(corpora), "cpu", resume=True, progress=False)
    line = json.loads((run / "train_log.jsonl").read_text().splitlines()[-1])
    expected = json.loads((FIXTURES / f"{name}.epoch2.json").read_text())
    for key in ("epoch", "step", "loss", "reconstruction", "kl", "val_nll", "val_kl", "val_au", "lr"):
        assert line[key] == pytest.approx(expected[key], abs=1e-3), key
    with pytest.raises(CheckpointError, match=r"train.seed: 3 -> 4"):
        train(replace(cli, train=replace(cli.train, seed=4)), run, str(corpora), "cpu", resume=True, progress=False)
    metrics = export(run, tmp_path / "shipped", data_dir=str(corpora), with_atlas=False)
    assert metrics["epochs"] == 2 and (tmp_path / "shipped" / "README.md").is_file()


def test_the_library_imports_neither_the_commands_nor_serving():
    """core/ is three rooms: every import in core/library/ (relative ones resolved) stays in it or
    leaves the project; commands and serving may import the library, and serving no command."""
    import ast

    root = Path(__file__).resolve().parents[1]
    seen = {}
    for room, banned in (("library", ("core.commands", "core.serving")), ("serving", ("core.commands",))):
        for path in (root / "core" / room).rglob("*.py"):
            package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                    targets = [f"{base}.{node.module}" if node.level and node.module else base or node.module]
                    targets += [f"{t}.{a.name}" for t in targets[:1] for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                seen[path.name] = seen.get(path.name, 0) + 1
                bad = [t for t in targets if t and any(t == b or t.startswith(b + ".") for b in banned)]
                assert not bad, f"{path.relative_to(root)} imports {bad}"
    assert seen.get("training.py") and seen.get("api.py")  # the walk read both rooms


def test_runs_started_by_the_runners_import_this_project():
    """A run the runners start (core.commands.parallel, and Ray tasks through it) gets the repository,
    the folder holding core/, first on its PYTHONPATH, wherever the runner module lives."""
    import os

    from core.commands.parallel import child_env

    first = Path(child_env("1")["PYTHONPATH"].split(os.pathsep)[0])
    assert (first / "core" / "__init__.py").is_file() and first == Path(__file__).resolve().parents[1]
