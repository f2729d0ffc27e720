"""The explorer's tab functions as plain Python, on the shipped flickr8k checkpoints and real corpora."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import threading
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

import core
from explorer.app import status_line
from explorer.context import Context, Memo, Unavailable
from explorer.tabs import collapse, compare, interpolate, latent_map, maps, neighbours, probe, reconstruct, sample
from explorer.tabs.common import guarded

# The tab functions behind the error boundary that `wire` puts them behind in the app.
rec, interp, analogy = (
    guarded(reconstruct.reconstruct),
    guarded(interpolate.interpolate, 2),
    guarded(interpolate.analogy),
)
smp, nbs, lmap = guarded(sample.sample), guarded(neighbours.neighbours), guarded(latent_map.latent_map, 5)


ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints"
MINE, COLLAPSED = "flickr8k-vae-mine", "flickr8k-vae-0.5"


@pytest.fixture(scope="module")
def ctx(data_dir, tmp_path_factory) -> Context:
    return Context(SHIPPED, str(data_dir), tmp_path_factory.mktemp("explorer-cache"))


def cells(html: str, label: str) -> list[str]:
    """Text of the cell right of each row labelled `label`, tags stripped."""
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(rf"<td>{re.escape(label)}</td><td>(.*?)</td>", html)]


def test_shipped_checkpoints_are_small_and_documented():
    names = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir())
    assert {MINE, COLLAPSED, "flickr8k-lagging"} <= set(names)
    total = 0
    for name in names:
        folder = SHIPPED / name
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        total += size
        assert size <= 25 * 2**20, name
        card = (folder / "README.md").read_text()
        metrics = core.load(folder).metrics["shipped_test"]
        assert f"{metrics['nll']:.2f}" in card and "Command:" in card
        assert not (folder / "resume").exists()
    assert total <= 35 * 2**20  # the project's limit for checkpoints/ (29 MiB now)


def test_the_page_says_how_each_model_of_the_pair_was_trained(ctx):
    """Beside the pair: epochs, whether the schedule ended or a budget stopped it, time and seed, read
    from each bundle's config and train_log; a bundle that a budget stopped says so."""
    from explorer.app import model_facts

    shown = model_facts(ctx, "flickr8k-lagging", "flickr8k-vae-mine-infonce")
    left, right = shown.split("<br>")
    log = ctx.model("flickr8k-lagging").train_log()
    assert f"{len(log)} epochs" in left and "its schedule ended (lr halved 5 times)" in left and "seed 101" in left
    assert "its schedule ended (lr halved 5 times)" in right and "seed 202" in right
    assert model_facts(ctx, "../etc/passwd", {"x": 1}) == ""  # garbage sent to the private handler


def test_a_budget_stopped_bundle_says_so_beside_its_name(ctx, tmp_path):
    """A LaggingVAE whose budget ran out inside its aggressive phase (its last log line aggressive, lr 1)."""
    from explorer.app import model_facts

    stopped = tmp_path / "ckpt" / "stopped-lagging"
    shutil.copytree(SHIPPED / "flickr8k-lagging", stopped)
    lines = (stopped / "train_log.jsonl").read_text().splitlines()[:2]
    (stopped / "train_log.jsonl").write_text("\n".join(lines) + "\n")
    config = json.loads((stopped / "config.json").read_text())
    config["run"]["train"]["minutes"] = 50
    (stopped / "config.json").write_text(json.dumps(config))
    metrics = json.loads((stopped / "metrics.json").read_text())
    (stopped / "metrics.json").write_text(json.dumps(dict(metrics, epochs=2, best_epoch=2)))
    here = Context(tmp_path / "ckpt", ctx.data_dir, tmp_path / "cache")
    shown = model_facts(here, "stopped-lagging", "stopped-lagging").split("<br>")[0]
    assert "2 epochs" in shown and "stopped by its 50-minute budget before its schedule ended" in shown
    assert "inside its aggressive phase" in shown


def test_default_pair_is_lagging_against_vae_mine(ctx):
    """VAE-MINE with the named settings that make its decoder read its code, labelled as beyond the
    paper wherever it is shown; the LaggingVAE and the paper's VAE-MINE as their papers train them."""
    assert ctx.default_pair() == ("flickr8k-lagging", "flickr8k-vae-mine-infonce")
    label = ctx.label("flickr8k-vae-mine-infonce")
    assert label.startswith("VAE-MINE") and label.endswith(" · beyond the paper")
    assert core.describe(SHIPPED / "flickr8k-vae-mine-infonce").departures["estimator"] == "infonce"
    assert "layer_biases" not in core.describe(SHIPPED / "flickr8k-vae-mine-infonce").departures
    assert "estimator=infonce" in (SHIPPED / "flickr8k-vae-mine-infonce" / "README.md").read_text()
    for faithful in (MINE, "flickr8k-lagging"):  # He et al.'s layers, rules and clip; the paper's settings
        assert core.describe(SHIPPED / faithful).departures == {}
        assert not ctx.label(faithful).endswith(" · beyond the paper")


def test_reconstruct_reports_kl_and_unknown_words_and_escapes_markup(ctx):
    text = "a dog runs through the grass .\na <script>alert(1)</script> zzqxv 😀 sits ."
    html = rec(ctx, COLLAPSED, MINE, text, 2)
    assert "<script>" not in html and "&lt;script&gt;" in html and "/script" in html  # as read, escaped
    assert "read as &lt;unk&gt;: " in html and "zzqxv" in html and "😀" in html
    kls = [float(c.split()[0]) for c in cells(html, "KL(q(z|x) ‖ p(z))")]
    assert len(kls) == 4  # two sentences, two models
    mine = core.load(SHIPPED / MINE)
    assert kls[2:] == pytest.approx(mine.kl(text.splitlines()), abs=0.006)
    assert max(kls[:2]) < 0.2 < min(kls[2:])  # the collapsed model's posterior is the prior
    assert cells(html, "from the mean")[2] == mine.reconstruct(text.splitlines()[0])[0]
    assert len(cells(html, "sample 2")) == 4 and not cells(html, "sample 3")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "enter one or more sentences"),
        ("   \n\t ", "enter one or more sentences"),
        ("\x00\x07\x1b", "is empty (after removing control characters)"),
    ],
)
def test_reconstruct_refuses_empty_text_with_a_message(ctx, text, expected):
    html = rec(ctx, COLLAPSED, MINE, text)
    assert expected in html and "Traceback" not in html and "vm-err" in html


def test_reconstruct_handles_huge_and_unknown_input(ctx):
    huge = rec(ctx, COLLAPSED, MINE, "dog " * 2500, 0)  # 10,000 characters
    assert "words beyond the model" in huge and len(cells(huge, "from the mean")) == 2
    unknown = rec(ctx, COLLAPSED, MINE, "qqqzz xxyyq 🤖🤖", 0)
    assert len(cells(unknown, "from the mean")) == 2 and "qqqzz" in unknown
    many = rec(ctx, COLLAPSED, MINE, "\n".join(["a dog ."] * 30), 0)
    assert "only the first 20 sentences" in many
    bad = rec(ctx, COLLAPSED, MINE, "a dog .", 0, "sample", 0.0)
    assert "temperature must be a number between 0.1 and 2" in bad
    assert "seed must be a whole number between 0 and 2,147,483,647; got -1" in rec(
        ctx, COLLAPSED, MINE, "a dog .", seed=-1
    )
    assert "internal error" not in rec(ctx, COLLAPSED, MINE, "a dog .", "abc", seed=1e30)


def test_interpolate_rows_run_from_one_reconstruction_to_the_other(ctx):
    a, b = interpolate.TABLE4
    figure, html = interp(ctx, COLLAPSED, MINE, a, b, 7, "slerp")
    rows = re.findall(r"<tr><td>([0-9.]+)</td><td>(.*?)</td><td>(.*?)</td></tr>", html)
    assert [r[0] for r in rows] == [f"{i / 6:.2f}" for i in range(7)]
    ends = re.findall(r"<tr><td>(from|to) \(as read\)</td><td>(.*?)</td>", html)
    assert [e[0] for e in ends] == ["from", "to"] and a in ends[0][1] and b in ends[1][1]  # the inputs at the ends
    mine = core.load(SHIPPED / MINE)
    path = mine.interpolate(a, b, 7, "slerp")
    assert [re.sub(r"<[^>]+>", "", r[2].split("<br>")[0]) for r in rows] == path
    for i, r in enumerate(rows):  # each step's score: its new words and its word-F1 with each input
        new, f1a, f1b = re.search(r"(\d+) new words? · F1 with from / to: ([0-9.]+) / ([0-9.]+)", r[2]).groups()
        assert int(new) == r[2].count('class="vm-new"') and (i or int(new) == 0)
        assert float(f1a) == pytest.approx(core.word_f1(path[i], a), abs=0.005)
        assert float(f1b) == pytest.approx(core.word_f1(path[i], b), abs=0.005)
    assert f"{len(set(path))} different sentences in 7 points" in html
    assert path[0] == mine.reconstruct(a)[0] and path[-1] == mine.reconstruct(b)[0]
    changed = [i for i in range(1, 7) if path[i] != path[i - 1]]

    def only_dropped(before: str, after: str) -> bool:  # after keeps some of before's words, in order, adds none
        rest = iter(before.split())
        return all(word in rest for word in after.split())

    assert changed and all(('class="vm-new"' in rows[i][2]) != only_dropped(path[i - 1], path[i]) for i in changed)
    assert "steps must be" in interp(ctx, COLLAPSED, MINE, a, b, 1)[1]


def test_the_table4_preset_says_before_it_runs_how_many_words_are_unknown(ctx):
    a, b, note = interpolate.table4_preset(ctx, "flickr8k-lagging", MINE)
    assert (a, b) == interpolate.TABLE4
    counts = re.findall(r"reads (\d+) of their (\d+) words as &lt;unk&gt;", note)
    model = ctx.model(MINE)
    unknown = sum(len(p.unknown) for p in model.prepare(list(interpolate.TABLE4)))
    assert len(counts) == 2 and unknown > 0 and int(counts[1][0]) == unknown, note
    assert interpolate.table4_preset(ctx, "../etc", {"x": 1})[2] == ""  # garbage sent to the private handler


def test_both_interpolation_paths_are_drawn_to_scale_in_one_chart(ctx):
    a, b = interpolate.START
    figure, _ = interp(ctx, COLLAPSED, MINE, a, b, 6, "slerp")
    paths = {t.name: t for t in figure.data if t.name and t.name.endswith(": path")}
    assert len(paths) == 2
    for name, trace in zip((COLLAPSED, MINE), paths.values()):
        codes = core.load(SHIPPED / name).interpolation_codes(a, b, 6, "slerp")
        xy = np.stack([trace.x, trace.y], axis=1)
        drawn = np.linalg.norm(xy[:, None] - xy[None], axis=-1)  # the plane holds the path: distances kept
        assert drawn == pytest.approx(np.linalg.norm(codes[:, None] - codes[None], axis=-1), abs=1e-5)
        assert np.linalg.norm(xy, axis=1) == pytest.approx(np.linalg.norm(codes, axis=1), abs=1e-5)
        assert list(trace.text) == core.load(SHIPPED / name).interpolate(a, b, 6, "slerp")
    collapsed, mine = (np.hypot(t.x[-1] - t.x[0], t.y[-1] - t.y[0]) for t in paths.values())
    assert collapsed < 0.2 < 1.0 < mine  # the collapsed model's path is a dot at the prior's mean
    clouds = [t for t in figure.data if t.name and t.name.endswith("validation means")]
    assert len(clouds) == 2 and all(len(t.x) == interpolate.CLOUD for t in clouds)


def test_analogy_decodes_the_offset_code(ctx):
    a, b, c = "a man is riding a bike .", "a woman is riding a bike .", "a man is playing the guitar ."
    html = analogy(ctx, COLLAPSED, MINE, a, b, c)
    mine = core.load(SHIPPED / MINE)
    mu, _ = mine.encode([a, b, c])
    assert mine.decode(mu[2] + mu[1] - mu[0])[0] in html


def test_diversity_figures():
    d = core.diversity(["a b c", "a b c", "a b d"])
    assert d["distinct-1"] == pytest.approx(4 / 9)
    assert d["distinct-2"] == pytest.approx(3 / 6)
    assert d["repeated"] == pytest.approx(1 / 3) and d["distinct"] == pytest.approx(2 / 3)


def test_sample_shows_collapse_as_repetition(ctx):
    html = smp(ctx, COLLAPSED, MINE, 20, seed=3)
    figures = [
        tuple(map(float, m))
        for m in re.findall(
            r"distinct-1</b> ([0-9.]+) · <b>distinct-2</b> ([0-9.]+) · <b>repeated sentences</b> ([0-9]+)%", html
        )
    ]
    assert len(figures) == 2
    mine = core.load(SHIPPED / MINE)
    d = core.diversity(mine.sample_prior(20, seed=3))
    assert figures[1][:2] == pytest.approx((d["distinct-1"], d["distinct-2"]), abs=5e-4)
    assert figures[0][1] < figures[1][1]  # fewer distinct bigrams from the collapsed model


def test_neighbours_of_a_training_sentence_start_with_itself(ctx, tmp_path):
    train = ctx.sentences(ctx.model(MINE), "train")
    query = train[1234]
    html = nbs(ctx, COLLAPSED, MINE, query, 5)
    mine_part = html.split("VAE-MINE")[1]
    rows = re.findall(r"<tr><td>(\d+)</td><td>([0-9.]+)</td><td>(.*?)</td><td>(.*?)</td></tr>", mine_part)
    assert len(rows) == 5 and float(rows[0][1]) < 1e-4 and {r[3] for r in rows} == {"training"}
    mine = core.load(SHIPPED / MINE)
    mu_q, _ = mine.encode([query])
    found = [unescape(r[2]) for r in rows]
    _, mu, _ = mine.encode_split("train", None, ctx.data_dir)
    cos = 1 - (mu @ mu_q[0]) / (np.linalg.norm(mu, axis=1) * np.linalg.norm(mu_q[0]))
    best = np.argsort(cos)[:5]
    assert float(rows[4][1]) == pytest.approx(cos[best[4]], abs=2e-3)  # the index holds float16 means
    assert query in found
    # the index comes from the checkpoints' atlases: nothing was encoded into the disk cache
    assert not list((ctx.cache_dir / "means").glob("flickr8k-train-None-*.npz"))
    again = Context(SHIPPED, ctx.data_dir, ctx.cache_dir)
    assert nbs(again, COLLAPSED, MINE, query, 5) == html
    # the index itself was saved once per checkpoint (faiss's format) and a torn one is rebuilt
    saved = sorted((ctx.cache_dir / "index").glob("flickr8k-train-None-*.faiss"))
    assert len(saved) == 2
    for f in saved:
        f.write_bytes(f.read_bytes()[:100])
    torn = Context(SHIPPED, ctx.data_dir, ctx.cache_dir)
    assert nbs(torn, COLLAPSED, MINE, query, 5) == html
    assert all(f.stat().st_size > 100 for f in saved)


def test_a_place_on_the_map_decodes_its_point_or_the_code_the_map_puts_there(ctx):
    place = guarded(latent_map.map_place)  # 320 sentences: a map no other test draws (their caches stay theirs)
    live = "flickr8k-lagging"
    coords, mu, collapsed = latent_map.drawn(ctx, ctx.model(live), "valid", 320)
    assert not collapsed and coords.shape == (320, 2)
    html = place(ctx, live, MINE, "valid", 320, "left #7")
    sentence = ctx.sentences(ctx.model(live), "valid", 320)[7]
    assert "point #7" in html and core.load(SHIPPED / live).decode(mu[7:8])[0] in unescape(html)
    assert f"“{sentence}”" in unescape(html)
    far = coords.max(0) + 10 * (coords.max(0) - coords.min(0))
    html = place(ctx, live, MINE, "valid", 320, f"left {far[0]:.4f} {far[1]:.4f}")
    assert "off the data" in html and "the decoder writes" in html
    between = coords[:2].mean(0)  # between two sentences' points: a blend of the nearest codes
    html = place(ctx, live, MINE, "valid", 320, f"left {between[0]} {between[1]}")
    assert "the decoder writes" in html
    collapsed_html = place(ctx, live, COLLAPSED, "valid", 320, "right #3")
    assert "collapsed" in collapsed_html
    for bad, said in (("left #320", "#0 to #319"), ("up 1 2", "click a map"), ("left 1e999x 2", "click a map")):
        assert said in place(ctx, live, MINE, "valid", 320, bad)


def test_the_whole_split_asked_for_by_any_n_is_read_from_the_atlas(data_dir, tmp_path):
    """The map's default N (1,000,000) covers the training split: its means, layout and the neighbour
    overlap colouring all come from the atlases under the whole split's key, nothing encoded again."""
    fresh = Context(SHIPPED, str(data_dir), tmp_path / "cache")
    pair = ["flickr8k-lagging", "flickr8k-vae-mine-infonce"]
    out = lmap(fresh, pair, "train", latent_map.WHOLE_N, "neighbour overlap with the other model")
    assert out[4].count("30,000 flickr8k/train sentences (the whole split), from the cache") == 2
    assert len(out[0].data[0].x) == 30_000
    assert not list((tmp_path / "cache").rglob("*.npz"))  # no split encoded into the disk cache
    assert fresh.whole(fresh.model(pair[0]), "train", 30_000) is None
    assert fresh.whole(fresh.model(pair[0]), "train", 29_999) == 29_999


def test_latent_map_figures_and_cache(ctx):
    out = lmap(ctx, [COLLAPSED, MINE], "valid", 300, "active unit #1")
    left_map, left_bars, right_map, right_bars, status = out
    assert len(right_map.data[0].x) == 300 and status.count("computed") == 2
    mine = core.load(SHIPPED / MINE)
    mu, _ = mine.encode(ctx.sentences(ctx.model(MINE), "valid", 300))
    var = mu.var(0, ddof=1)  # the AU statistic of core.evaluate: unbiased variance of the means
    assert list(right_bars.data[0].y) == pytest.approx(np.maximum(var, 1e-8), rel=1e-4, abs=1e-6)
    assert f"{int((var >= core.AU_THRESHOLD).sum())} of 32 units active" in right_bars.layout.title.text
    assert f"z[{int(np.argmax(var))}] (rank 1" in right_map.data[0].marker.colorbar.title.text
    assert "0 of 32 units active" in left_bars.layout.title.text
    again = lmap(ctx, [COLLAPSED, MINE], "valid", 300, "sentence length")
    assert again[4].count("from the cache") == 2
    assert list(again[2].data[0].x) == pytest.approx(list(right_map.data[0].x))
    assert list(again[2].data[0].marker.color) == [len(s.split()) for s in ctx.sentences(ctx.model(MINE), "valid", 300)]


def test_collapse_table_curves_and_kl_per_dimension(ctx):
    table = collapse.figures_table(ctx)
    row = table[table.checkpoint.str.contains(MINE)].iloc[0]
    shipped = core.load(SHIPPED / MINE).metrics["shipped_test"]
    assert row.NLL == pytest.approx(shipped["nll"], abs=0.006) and row.AU == shipped["au"]
    curves = collapse.training_curves(ctx)
    assert {t.name for t in curves.data} >= {ctx.label(MINE), ctx.label(COLLAPSED)}
    fig, note = collapse.kl_per_dimension(ctx, [COLLAPSED, MINE])
    mine = core.load(SHIPPED / MINE)
    total = mine.kl(ctx.sentences(ctx.model(MINE), "valid", collapse.KL_SENTENCES)).mean()
    assert sum(fig.data[1].y) == pytest.approx(total, rel=1e-4)
    assert sum(fig.data[0].y) < 0.1


def test_memory_cache_is_bounded_least_recently_used_first():
    memo = Memo(max_bytes=3 * 8000)
    for i in range(3):
        memo.put(i, np.zeros(1000))  # 8,000 bytes each
    memo.get(0)
    memo.put(3, np.zeros(1000))
    assert 1 not in memo and {0, 2, 3} <= {k for k in range(4) if k in memo} and memo.bytes <= memo.max_bytes
    memo.put("huge", np.zeros(10_000))  # larger than the whole bound: not kept
    assert "huge" not in memo and memo.bytes == 3 * 8000


def test_one_slow_build_holds_up_only_the_callers_of_its_own_key(tmp_path):
    """A visitor's new map size (a UMAP fit of seconds) must not hold up another visitor's map: builds
    of different keys run side by side, a second caller of the same key waits for the first build."""
    ctx = Context(tmp_path)
    release, started, builds = threading.Event(), threading.Event(), []

    def slow():
        builds.append("slow")
        started.set()
        release.wait(30)
        return np.zeros(3)

    first = threading.Thread(target=ctx.memo, args=("new size", slow))
    second = threading.Thread(target=ctx.memo, args=("new size", slow))
    first.start()
    assert started.wait(10)
    second.start()
    assert ctx.memo("first map", lambda: np.ones(2)).sum() == 2  # answered while the fit runs
    assert first.is_alive() and second.is_alive()
    release.set()
    first.join(10), second.join(10)
    assert builds == ["slow"]  # the second caller got the first build's value


def test_neighbours_and_analogy_report_unknown_and_cut_input(ctx):
    long = "a dog qqzzx " + "runs " * 300
    html = nbs(ctx, COLLAPSED, MINE, long, 3)
    assert html.count("read as &lt;unk&gt;: qqzzx") == 2 and html.count("words beyond the model's 200 were cut") == 2
    out = analogy(ctx, COLLAPSED, MINE, long, "a woman is riding a bike .", "a man is playing the guitar .")
    assert out.count("a: read as &lt;unk&gt;: qqzzx") == 2 and "a: 103 words beyond" in out
    assert len(out) < 6000  # the header shows the input as read (cut), not all of it


def test_without_corpus_every_tab_says_what_is_missing(tmp_path):
    ctx = Context(SHIPPED, str(tmp_path / "no-data"), tmp_path / "cache")
    assert "corpus data missing for flickr8k" in status_line(ctx)
    assert "corpus file not found" in nbs(ctx, COLLAPSED, MINE, "a dog .")
    assert len(cells(rec(ctx, COLLAPSED, MINE, "a dog ."), "from the mean")) == 2
    assert "corpus file not found" in lmap(ctx, [COLLAPSED, MINE], "valid", 100)[4]
    assert "corpus file not found" in collapse.kl_per_dimension(ctx, [MINE])[1]
    assert smp(ctx, COLLAPSED, MINE, 3).count("distinct-1") == 2
    # your sentences still work: mapped on their own, and searched as neighbours
    yours = "a dog runs on the beach .\na girl jumps into a pool .\ntwo men play football .\na cat sleeps ."
    out = lmap(ctx, ["flickr8k-lagging", MINE], "valid", 100, "sentence length", "", yours)
    assert out[4].count("only your 4 sentences are mapped") == 2 and len(out[0].data[0].x) == 4
    assert list(out[0].data[0].marker.color) == [7, 7, 5, 4]
    assert (
        "a map needs at least 4; got 2"
        in lmap(ctx, [MINE, MINE], "valid", 100, "sentence length", "", "a dog .\na cat .")[4]
    )
    html = nbs(ctx, "flickr8k-lagging", MINE, "a dog runs on the sand .", 3, yours)
    assert html.count("only your sentences are searched") == 2 and html.count("<td>yours</td>") == 6
    assert (
        "the compare view maps corpus sentences" in guarded(compare.compare_maps, 2)(ctx, "flickr8k-lagging", MINE)[1]
    )


def test_compare_disagreement_and_selection(ctx):
    cmp, dis, sel = guarded(compare.compare_maps, 2), guarded(compare.disagreement), guarded(compare.compare_selection)
    live, mine = "flickr8k-lagging", "flickr8k-vae-mine-infonce"
    fig, status = cmp(ctx, live, mine)
    assert "aligned layout shipped in the checkpoints' atlases" in status
    assert len(fig.data) == 2 and len(fig.data[0].x) == len(fig.data[1].x) == core.MAP_N
    assert list(fig.data[1].customdata[:3]) == [0, 1, 2]  # point i is sentence i in both maps
    found = maps.pair_overlap(ctx, [live, mine], "valid", core.MAP_N)
    assert list(fig.data[0].marker.color) == pytest.approx(list(found.shared * 10))
    html = dis(ctx, live, mine)
    assert f"{found.mean * 10:.2f} of 10" in html and "Chance, two lists of 10" in html and "0.05 of 10" in html
    worst = int(np.argmin(found.shared))
    assert f"<td>{worst}</td>" in html.split("agree most")[0]
    collapsed = maps.pair_overlap(ctx, [live, COLLAPSED], "valid", core.MAP_N)
    assert collapsed.mean < found.mean / 2  # the classroom case: VAE-0.5's codes carry almost nothing, toward chance
    # a search rings the sentences holding the words, in both maps
    fig, status = cmp(ctx, live, mine, "valid", core.MAP_N, "the searched words", "dog")
    sentences = ctx.sentences(ctx.model(live), "valid", core.MAP_N)
    holding = sum(" dog " in f" {s} " for s in sentences)
    assert len(fig.data) == 4 and len(fig.data[2].x) == holding and f"{holding:,} hold “dog”" in status
    # a fresh pair (no shipped layout) is fitted, cached, and the second answer comes from the cache
    fig, status = cmp(ctx, MINE, COLLAPSED, "valid", 60)
    assert "computed" in status and len(fig.data[0].x) == 60
    assert "from the cache" in cmp(ctx, MINE, COLLAPSED, "valid", 60)[1]
    # the selection: both reconstructions and KL, with the map's coordinates
    table = sel(ctx, live, mine, "valid", core.MAP_N, "7, 3 7")
    rows = list(
        csv.reader(io.StringIO(unquote(re.search(r'href="data:text/csv;charset=utf-8,([^"]*)"', table).group(1))))
    )
    assert [r[0] for r in rows[1:]] == ["7", "3"] and len(rows[0]) == 8
    assert rows[0][4:6] == [
        f"reconstruction (left: {live})",
        f"reconstruction (right: {mine})",
    ]  # headers name the checkpoint
    assert rows[1][1] == sentences[7]
    xy = cmp(ctx, live, mine)[0].data[0]
    assert rows[1][2] == f"{xy.x[7]:.2f}, {xy.y[7]:.2f}"
    assert float(rows[1][6]) == pytest.approx(float(core.load(SHIPPED / live).kl([sentences[7]])[0]), abs=0.01)
    for bad, wanted in (("", "nothing selected"), ("5 abc", "not sentence numbers"), ("2000", "from 0 to 1,999")):
        assert wanted in sel(ctx, live, mine, "valid", core.MAP_N, bad)
    assert "the compare view needs two models" in cmp(ctx, live, None)[1]


def test_corrupt_and_missing_checkpoints_get_a_message(tmp_path, data_dir):
    folder = tmp_path / "ckpts"
    shutil.copytree(SHIPPED / MINE, folder / "good")
    shutil.copytree(SHIPPED / MINE, folder / "corrupt")
    (folder / "corrupt" / "model.safetensors").write_bytes(b"\x00" * 100)
    shutil.copytree(SHIPPED / COLLAPSED, folder / "mismatched")
    shutil.copy(SHIPPED / MINE / "config.json", folder / "mismatched" / "config.json")
    ctx = Context(folder, str(data_dir), tmp_path / "cache")
    html = rec(ctx, "corrupt", "good", "a dog runs .")
    assert "cannot load corrupt: corrupt weights file" in html and len(cells(html, "from the mean")) == 1
    assert "does not match" in rec(ctx, "mismatched", "good", "a dog .")
    assert "no checkpoint named 'gone'" in unescape(smp(ctx, "gone", "good", 2))
    with pytest.raises(Unavailable, match="no checkpoint chosen"):
        ctx.model(None)
    empty = Context(tmp_path / "nothing", str(data_dir), tmp_path / "cache")
    assert empty.default_pair() == (None, None)
    assert "none found" in rec(empty, None, None, "a dog .")
    assert "No checkpoints found" in status_line(empty)


def test_lab_verdict_names_collapse_from_the_last_epoch():
    collapsed = [{"val_kl": 0.9, "val_mi": 0.4, "val_au": 2}, {"val_kl": 0.01, "val_mi": 0.0, "val_au": 0}]
    assert collapse.verdict(collapsed).startswith("collapsed (KL 0.01, MI 0.00, AU 0)")
    assert collapse.verdict(collapsed[:1]) == "uses z (KL 0.90, MI 0.40, AU 2)"


def test_every_tab_intro_is_plain_text_with_its_figures_filled_in():
    intros = [reconstruct.INTRO, interpolate.INTRO, neighbours.INTRO, latent_map.INTRO, collapse.EXPLAINED]
    assert all(text.count(".") >= 2 and "{" not in text for text in intros)
    assert f"first {collapse.KL_SENTENCES:,} validation sentences" in collapse.EXPLAINED


def test_the_decoder_use_of_z_tells_the_collapsed_model_from_the_live_one():
    live, collapsed = (core.load(SHIPPED / n) for n in ("flickr8k-lagging", COLLAPSED))
    sentence = "a dog runs through the grass ."
    a, b = live.decoder_use_of_z(sentence), collapsed.decoder_use_of_z(sentence)
    assert a["words"] == sentence.split() + ["</s>"] and len(a["prior"]) == len(a["zero"]) == 8
    # the collapsed decoder barely changes its predictions; LaggingVAE's moves by several times that (this
    # seed's 0.19 nats a word on this draw, 0.48 over 20 draws: bench.quality)
    assert b["mean_prior"] < 0.05 < 0.1 < a["mean_prior"]
    assert a["mean_prior"] == pytest.approx(float(np.mean(a["prior"])))
    assert live.decoder_use_of_z(sentence) == a  # the prior draw is seeded


def test_the_unit_probe_changes_a_live_unit_and_nothing_for_a_collapsed_one(ctx):
    html = probe.unit_probe(
        ctx, "flickr8k-lagging", COLLAPSED, "a dog runs through the grass .", "most active unit #1", 7
    )
    live, dead = html.split("</style>")[-1].split(COLLAPSED, 1)
    assert "an active unit" in live and 'class="vm-new"' in live  # the decoded sentence changes along the sweep
    assert "NOT an active unit" in dead and 'class="vm-new"' not in dead
    assert len(re.findall(r"<tr><td>[+-][0-9.]+</td>", live)) == 7
    with pytest.raises(core.InputError, match="dimension must be a whole number between 0 and 31"):
        core.load(SHIPPED / COLLAPSED).sweep_unit("a dog .", 32, 1.0)
    with pytest.raises(core.InputError, match="steps must be a whole number between 2 and 50"):
        probe.unit_probe(ctx, COLLAPSED, MINE, "a dog .", "least active unit", 1)


def test_training_replay_redraws_the_chosen_epoch_and_the_collapsed_codes_shrink(ctx):
    epochs, coords = core.load(SHIPPED / COLLAPSED).training_replay()
    left, right, left_slider, right_slider, status = collapse.training_replay(ctx, "flickr8k-lagging", COLLAPSED)
    assert len(epochs) >= 2 and (right_slider["minimum"], right_slider["maximum"], right_slider["value"]) == (
        epochs[0],
        epochs[-1],
        epochs[-1],
    )
    _, first, _, _, said = collapse.training_replay(ctx, "flickr8k-lagging", COLLAPSED, None, int(epochs[0]))
    drawn = lambda fig: np.c_[fig.data[0].x, fig.data[0].y]  # noqa: E731
    assert np.allclose(drawn(right), coords[-1]) and np.allclose(drawn(first), coords[0])
    # VAE-0.5 collapsed within its first epoch: its codes shrink from there on, every frame a dot, and it says so
    assert np.abs(drawn(right)).max() < np.abs(drawn(first)).max() < collapse.DOT
    assert "collapsed before its first saved epoch" in status
    # LaggingVAE's codes spread out in its aggressive phase and are pulled in as the KL weight rises
    lagging_epochs, _ = core.load(SHIPPED / "flickr8k-lagging").training_replay()
    spread_out = collapse.training_replay(ctx, "flickr8k-lagging", COLLAPSED, int(lagging_epochs[0]))[0]
    assert np.abs(drawn(spread_out)).max() > 1.3 * np.abs(drawn(left)).max() > 1.0
    assert tuple(right.layout.xaxis.range) == tuple(first.layout.xaxis.range)  # one frame of reference
    assert tuple(right.layout.xaxis.range) == (-1.0, 1.0)  # fixed axes, at least the prior's sd
    assert "saved epochs" in status and f"after epoch {int(epochs[0])}" in said and left is not None
    *_, bad = collapse.training_replay(ctx, "flickr8k-lagging", COLLAPSED, None, "1e9")
    assert f"epoch must be a whole number between {int(epochs[0])} and {int(epochs[-1])}" in bad
    fixture = ROOT / "tests" / "fixtures" / "format1"
    old = Context(fixture, ctx.data_dir, ctx.cache_dir)
    *_, said = collapse.training_replay(old, "vae-mine", "lagging")
    assert "saved no posterior means" in said


def test_every_table_downloads_as_csv_with_the_text_a_reader_sees(ctx):
    from urllib.parse import unquote

    html = rec(ctx, COLLAPSED, MINE, "a dog <b>runs</b> .", 0)
    links = re.findall(r'<a class="vm-csv" download="([^"]+)" href="data:text/csv;charset=utf-8,([^"]+)"', html)
    assert [name for name, _ in links] == [f"reconstruct-{COLLAPSED}-1.csv", f"reconstruct-{MINE}-1.csv"]
    rows = list(csv.reader(io.StringIO(unquote(links[1][1]))))
    mine = core.load(SHIPPED / MINE)
    read = " ".join(mine.prepare("a dog <b>runs</b> .")[0].tokens)  # as the model read it, markup as text
    assert rows[0] == ["", "sentence 1"] and rows[1] == ["input", read] and "<b>" in read
    assert rows[3] == ["from the mean", mine.reconstruct(["a dog <b>runs</b> ."])[0]]


def test_a_link_restores_what_a_page_can_hold_and_names_what_it_cannot(ctx):
    from explorer import share
    from explorer.app import build_app

    app = build_app(SHIPPED, str(ctx.data_dir), ctx.cache_dir)
    inputs, buttons = share.shared_inputs(app), share.rerun_buttons(app)
    assert {"left-model", "int-a", "int-steps", "int-mode", "int-seed", "rec-strategy", "map-split"} <= set(inputs)
    assert "int-go" in buttons and "lab-go" not in buttons  # a link never starts a minute of training
    tab, values, runs, notes = share.restore(
        {
            "tab": "interpolate",
            "int-a": "a cat .",
            "int-steps": "1e3",
            "int-seed": "2",
            "int-mode": "slerp",
            "right-model": COLLAPSED,
            "run": "int-go,lab-go,int-go",
        },
        inputs,
        ["reconstruct", "interpolate"],
        buttons,
    )
    assert tab == "interpolate" and runs == ["int-go"]
    assert values == {
        "int-a": "a cat .",
        "int-steps": 1000,
        "int-seed": 2,
        "int-mode": "slerp",
        "right-model": COLLAPSED,
    }
    assert notes == ["button 'lab-go' cannot be pressed from a link"]  # 1000 steps is kept: core refuses it on press
    tab, values, runs, notes = share.restore(
        {
            "tab": "x",
            "int-steps": "nan",
            "int-mode": "zigzag",
            "left-model": "../etc",
            "who": "1",
            "rec-text": "a " * 4000,
        },
        inputs,
        ["reconstruct"],
        buttons,
    )
    assert tab is None and runs == [] and list(values) == ["rec-text"] and len(values["rec-text"]) == share.MAX_TEXT
    assert notes == [
        "tab 'x' does not exist",
        "int-steps: 'nan' is not a number",
        "int-mode: 'zigzag' is not one of its choices",
        "left-model: '../etc' is not one of its choices",
        "field 'who' is not on this page",
        f"rec-text: only the first {share.MAX_TEXT:,} characters were kept",
    ]


def test_the_lab_offers_only_corpora_it_can_train_on(ctx, tmp_path):
    assert ctx.lab_corpora() == ["flickr8k", "ptb"]  # snli and yahoo have no training split here
    assert "snli" in ctx.corpora() and "yahoo" in ctx.corpora()
    empty = Context(ctx.checkpoints, str(tmp_path), ctx.cache_dir)
    assert empty.lab_corpora() == []
    with pytest.raises(core.InputError, match="none available"):
        empty.vet_arguments({"corpus": "flickr8k"})


def test_views_of_a_collapsed_or_code_sharing_model_say_so(ctx):
    """VAE-0.5's codes are collapsed; the paper's VAE-MINE maps many captions onto one code; the default
    VAE-MINE neither: Neighbours and the map say which, and the collapse table shows the decoder's use of z."""
    from explorer.tabs import latent_map, neighbours

    said = neighbours.neighbours(ctx, COLLAPSED, MINE, "a curly haired woman plays the violin .")
    collapsed_panel, sharing_panel = (
        said.split("neighbours-flickr8k-vae-0.5")[0],
        said.split("neighbours-flickr8k-vae-0.5")[1],
    )
    assert "code is collapsed" in collapsed_panel
    assert "nothing in this list reaches what the model writes" in collapsed_panel
    assert "share their code with another sentence" in sharing_panel and "collapsed" not in sharing_panel
    healthy = neighbours.neighbours(ctx, "flickr8k-lagging", "flickr8k-vae-mine-infonce", "a dog runs .")
    assert "collapsed" not in healthy and "share their code" not in healthy
    left, _, right, _, status = latent_map.latent_map(
        ctx, [COLLAPSED, "flickr8k-vae-mine-infonce"], "valid", 300, "sentence length"
    )
    assert tuple(left.layout.xaxis.range) == (-1, 1) and "true scale" in left.layout.title.text
    assert max(np.ptp(left.data[0].x), np.ptp(left.data[0].y)) < 0.01  # the whole split is the dot it is
    assert right.layout.xaxis.range is None and "codes are collapsed" in status and "true scale" in status
    compared = compare.compare_maps(ctx, COLLAPSED, MINE, "valid", 300, "sentence length")[1]
    assert "codes are collapsed" in compared and "mean nothing" in compared and "share their code" in compared
    healthy = compare.compare_maps(
        ctx, "flickr8k-lagging", "flickr8k-vae-mine-infonce", "valid", 300, "sentence length"
    )[1]
    assert "collapsed" not in healthy and "share their code" not in healthy
    probed = probe.unit_probe(ctx, COLLAPSED, "flickr8k-vae-mine-infonce", "a dog runs through the grass .")
    assert probed.count("code is collapsed") == 1 and probed.index("code is collapsed") < probed.index(
        "vae-mine-infonce"
    )
    table = collapse.figures_table(ctx).set_index("checkpoint")
    use = {name: table.loc[ctx.label(name), "use of z"] for name in (COLLAPSED, MINE, "flickr8k-vae-mine-infonce")}
    assert use[COLLAPSED] < 0.05 < use[MINE] < 1.0 < use["flickr8k-vae-mine-infonce"]


def test_a_torn_or_emptied_cache_file_is_rebuilt(ctx, caplog):
    first = latent_map.latent_map(ctx, ["flickr8k-lagging"], "valid", 120, "sentence length")
    files = sorted((ctx.cache_dir / "umap").glob("*-valid-120-*.npz"))
    assert files
    ctx._memo = Memo()  # a restarted server: only the disk cache is left
    for i, path in enumerate(files):
        data = path.read_bytes()
        path.write_bytes(b"" if i % 2 == 0 else data[: len(data) // 2])
    again = latent_map.latent_map(ctx, ["flickr8k-lagging"], "valid", 120, "sentence length")
    assert "internal error" not in again[-1] and "computed" in again[-1]
    assert np.allclose(again[0].data[0].x, first[0].data[0].x)  # the same layout, fitted again
    assert "it is rebuilt" in caplog.text
