"""A bundle is untrusted input: the real app starts on a folder of malformed bundles beside good
ones, serves the page, lists each bad bundle with a message naming its file, and never reads a
file a bundle points at."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from safetensors.torch import load_file, save_file

import core
from core.library.errors import CheckpointError
from explorer.launch import running_app

ROOT = Path(__file__).resolve().parents[1]
GOOD = ("flickr8k-lagging", "flickr8k-vae-0.5")
SOURCE = ROOT / "checkpoints" / "flickr8k-vae-0.5"


def edit_config(folder: Path, change) -> None:
    path = folder / "config.json"
    d = json.loads(path.read_text())
    change(d["run"])
    path.write_text(json.dumps(d))


def nan_weights(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["model.decoder.project.weight"].view(-1)[3] = float("nan")
    save_file(tensors, str(folder / "model.safetensors"))


# name -> (how the copy is damaged, the file its message must name)
MALFORMED = {
    "dropout-5": (lambda f: edit_config(f, lambda r: r["model"].update(dec_dropout_in=5.0)), "config.json"),
    "negative-dim": (lambda f: edit_config(f, lambda r: r["model"].update(hidden_dim=-3)), "config.json"),
    "string-dim": (lambda f: edit_config(f, lambda r: r["model"].update(emb_dim="64")), "config.json"),
    "huge-dim": (lambda f: edit_config(f, lambda r: r["model"].update(emb_dim=1_000_000)), "config.json"),
    "wrong-dim": (
        lambda f: edit_config(f, lambda r: r["model"].update(emb_dim=4000, hidden_dim=4000)),
        "model.safetensors",
    ),
    "bad-precision": (lambda f: edit_config(f, lambda r: r["train"].update(precision="fp8")), "config.json"),
    "metrics-not-json": (lambda f: (f / "metrics.json").write_text("{no"), "metrics.json"),
    "metrics-a-list": (lambda f: (f / "metrics.json").write_text("[1, 2]"), "metrics.json"),
    "metrics-text-time": (lambda f: (f / "metrics.json").write_text('{"train_seconds": "long"}'), "metrics.json"),
    "log-not-utf8": (lambda f: (f / "train_log.jsonl").write_bytes(b'{"epoch": 1}\n\xff\xfe\n'), "train_log.jsonl"),
    "nan-weights": (nan_weights, "model.safetensors"),
}
PATH_CORPORA = {"corpus-etc-passwd": "/etc/passwd", "corpus-up-the-tree": "../../../../etc"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "checkpoints"
    for name in GOOD:
        shutil.copytree(ROOT / "checkpoints" / name, root / name)
    for name, (damage, _) in MALFORMED.items():
        shutil.copytree(SOURCE, root / name)
        damage(root / name)
    for name, corpus in PATH_CORPORA.items():
        shutil.copytree(SOURCE, root / name)
        edit_config(root / name, lambda r, c=corpus: r.update(corpus=c))
    (root / "bad name!").mkdir()
    shutil.copy(SOURCE / "config.json", root / "bad name!" / "config.json")
    return root


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_core_load_says_which_file_is_wrong(folder, name):
    with pytest.raises(CheckpointError, match=re.escape(MALFORMED[name][1])):
        model = core.load(folder / name)
        model.train_log()  # the log is read when asked for


def test_sizes_in_the_config_are_checked_before_anything_is_allocated(folder):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="emb_dim must be between 1 and 4096, not 1000000"):
        core.load(folder / "huge-dim")
    with pytest.raises(
        CheckpointError, match="wrong shape"
    ):  # within range, but not the weights' (read from the header)
        core.load(folder / "wrong-dim")
    assert (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    )  # KiB: not the 0.5 GB wrong-dim asks for


def test_the_app_starts_lists_each_bad_bundle_and_reads_no_file_a_bundle_names(folder, tmp_path, corpora):
    log = tmp_path / "app.log"
    with running_app(log, tmp_path / "cache", corpora, checkpoints=str(folder)) as (url, _, _):
        from gradio_client import Client

        client = Client(url, verbose=False)
        for name in PATH_CORPORA:
            replay = client.predict(
                left=name, right=GOOD[1], left_epoch=None, right_epoch=None, api_name="/training_replay"
            )
            shown = json.dumps(replay)
            assert "root:x:" not in shown, shown[max(0, shown.find("root:x:") - 400) : shown.find("root:x:") + 200]
            assert "corpus is a path" in shown
            mapped = client.predict(
                left=name,
                right=GOOD[1],
                split="valid",
                n=50,
                colour="length",
                search="",
                yours="",
                api_name="/latent_map",
            )
            assert "root:x:" not in json.dumps(mapped)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Posterior collapse").click()
            table = page.locator("#col-table")
            expect(table).to_contain_text("LaggingVAE")
            text = table.inner_text()
            for name in MALFORMED:
                assert name in text, name
            assert text.count("config.json") >= 5 and "metrics.json" in text and "model.safetensors" in text
            assert "bad name!" not in page.content()
            browser.close()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
