"""The explorer's start-up time and each action's latency through the running app's API, as JSON.

    .venv/bin/python -m bench.explorer [--checkpoints checkpoints] [--data-dir DIR] [--repeats 50]
        [--out bench/results/explorer-cpu-2core.json]

Starts `python app.py` three times in a fresh cache folder and a fresh NUMBA_CACHE_DIR: cold
(nothing cached; then each tab's first answer for its default inputs, seconds after ready), warm
(caches on disk), and once more warm.
Latencies are wall-clock times of `gradio_client` calls on the warm app, left/right = the app's
default pair, after 3 warm-up calls each: p50 / p95 / max in ms. Then a long scripted visit (every
action of every tab for every checkpoint, at the largest sizes the controls allow) and
the server's resident memory before it and after each of three runs of it.

`--part compare` measures only the compare view and your sentences, on one app started cold (fresh
caches and NUMBA_CACHE_DIR), and puts the figures under "compare_view" in `--out`, keeping the rest
of that file: the default pair's aligned maps (shipped) first and warm, a pair whose layout is not
shipped from a cold cache and warm, a second such pair (umap-learn's code compiled by the first),
the disagreement figures, a listed selection of 50, and 1,000
of your sentences (test captions) placed on the shipped default map, first and warm.

`--part overlap` writes, under "neighbour_overlap", the compare view's mean neighbour overlap (of 10)
of the first checkpoint against each other one on the map's sentences (the first 2,000 validation
sentences), with chance: the figures docs/explorer.md quotes.

`--part load` puts the server under load and reads its memory, under "load" in `--out`: 50 identical
visits in headless Chromium (a fresh browser context each: the page, then Reconstruct), the server's
resident memory after each; 1,000 API calls (every endpoint but the lab, in turn, default inputs)
with the memory every 100; then 16 and 32 clients, each its own gradio_client, calling those
endpoints in turn for `--seconds` each: p50 / p95 per endpoint (queueing included) and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from gradio_client import Client

from bench import report
from core import LIMITS, STRATEGIES
from explorer.launch import running_app

TABLE4 = (
    "this church choir sings to the masses as they sing joyous songs from the book at a church .",
    "a woman with a green headscarf , blue shirt and a very big grin .",
)


def timed(fn, repeats: int) -> dict:
    for _ in range(3):
        fn()
    ms = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
        "max_ms": round(ms[-1], 1),
        "calls": repeats,
    }


def latencies(client: Client, pair: dict, repeats: int) -> dict:
    """The first cached map after a restart, then p50 / p95 / max of each action."""
    t = time.perf_counter()
    client.predict(**pair, split="valid", n=2000, colour="active unit #1", api_name="/latent_map")
    out: dict = {"latent_map_2000_cached_first_s": round(time.perf_counter() - t, 2)}
    t = time.perf_counter()
    whole = {"split": "train", "n": 1_000_000, "colour": "active unit #1"}  # the map's default: the whole split
    client.predict(**pair, **whole, api_name="/latent_map")
    out["latent_map_whole_train_first_s"] = round(time.perf_counter() - t, 2)
    greedy = {"strategy": "greedy", "temperature": 1.0, "beam_size": 5, "seed": 0}
    actions = {
        "reconstruct (2 sentences, mean + 3 posterior samples, greedy)": lambda: client.predict(
            **pair,
            text="a dog runs through the grass .\ntwo children are playing on the beach .",
            samples=3,
            **greedy,
            api_name="/reconstruct",
        ),
        "interpolate (10 points, Table 4 pair, greedy)": lambda: client.predict(
            **pair, a=TABLE4[0], b=TABLE4[1], steps=10, mode="linear", **greedy, api_name="/interpolate"
        ),
        "sample (10 prior sentences, greedy)": lambda: client.predict(**pair, n=10, **greedy, api_name="/sample"),
        "neighbours (top 10 over the whole training split)": lambda: client.predict(
            **pair, text="a black dog is running on the grass .", k=10, api_name="/neighbours"
        ),
        "latent map (2,000 sentences, cached)": lambda: client.predict(
            **pair, split="valid", n=2000, colour="active unit #1", api_name="/latent_map"
        ),
        "latent map (the whole training split, from the atlas)": lambda: client.predict(
            **pair, **whole, api_name="/latent_map"
        ),
        "a place on the map (a point: decoded, 5 training neighbours)": lambda: client.predict(
            **pair, split="train", n=1_000_000, place="left #1234", api_name="/map_place"
        ),
    }
    out["latency_per_call_both_models"] = {
        name: timed(fn, repeats if "map" not in name else 10) for name, fn in actions.items()
    }
    return out


def seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return round(time.perf_counter() - t, 2)


def compare_view(client: Client, pair: dict, unshipped: dict, unshipped2: dict, yours: str, repeats: int = 5) -> dict:
    """Seconds of the compare view's and your sentences' answers: first (cold) and warm (median of repeats)."""

    def warm(fn) -> float:
        return round(statistics.median(seconds(fn) for _ in range(repeats)), 3)

    maps = lambda p: lambda: client.predict(**p, split="valid", n=2000, api_name="/compare_maps")  # noqa: E731
    overlap = lambda p: lambda: client.predict(**p, split="valid", n=2000, api_name="/disagreement")  # noqa: E731
    placed = lambda: client.predict(
        **pair,
        split="valid",
        n=2000,
        colour="active unit #1",
        search="",  # noqa: E731
        yours=yours,
        api_name="/latent_map",
    )
    listed = lambda: client.predict(
        **pair,
        split="valid",
        n=2000,
        ids=" ".join(map(str, range(0, 2000, 40))),  # noqa: E731
        api_name="/compare_selection",
    )
    out = {
        "pair": list(pair.values()),
        "unshipped_pair": list(unshipped.values()),
        "compare_2000_shipped_first_s": seconds(maps(pair)),
        "compare_2000_shipped_warm_s": warm(maps(pair)),
        "disagreement_2000_first_s": seconds(overlap(pair)),
        "disagreement_2000_warm_s": warm(overlap(pair)),
        "selection_50_listed_first_s": seconds(listed),
        "selection_50_listed_warm_s": warm(listed),
        "compare_2000_unshipped_cold_s": seconds(maps(unshipped)),
        "compare_2000_unshipped_warm_s": warm(maps(unshipped)),
        "second_unshipped_pair": list(unshipped2.values()),
        "compare_2000_second_unshipped_not_cached_s": seconds(maps(unshipped2)),
        "your_1000_sentences_placed_first_s": seconds(placed),
        "your_1000_sentences_placed_warm_s": warm(placed),
    }
    return out


def first_answers(client: Client, pair: dict) -> dict:
    """Seconds to each tab's first answer for its default inputs, asked one after another right
    after the app said it was ready (its warm-up still running)."""
    greedy = {"strategy": "greedy", "temperature": 1.0, "beam_size": 5, "seed": 0}
    asks = {
        "reconstruct": lambda: client.predict(
            **pair,
            text="a dog runs through the grass .\ntwo children are playing on the beach .",
            samples=3,
            **greedy,
            api_name="/reconstruct",
        ),
        "interpolate": lambda: client.predict(
            **pair, a=TABLE4[0], b=TABLE4[1], steps=10, mode="linear", **greedy, api_name="/interpolate"
        ),
        "sample": lambda: client.predict(**pair, n=10, **greedy, api_name="/sample"),
        "neighbours": lambda: client.predict(
            **pair, text="a black dog is running on the grass .", k=10, api_name="/neighbours"
        ),
        "latent_map": lambda: client.predict(
            **pair, split="valid", n=2000, colour="active unit #1", api_name="/latent_map"
        ),
        "kl_per_dimension": lambda: client.predict(**pair, api_name="/kl_per_dimension"),
    }
    out = {}
    for name, ask in asks.items():
        t = time.perf_counter()
        ask()
        out[name] = round(time.perf_counter() - t, 2)
    return out


def warm_up_seconds(log: Path, timeout: float = 300) -> float | None:
    """The app's start-up warm-up time, from its log line (None if it did not end within timeout)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        found = re.search(r"warm-up done in ([0-9.]+) s", log.read_text())
        if found:
            return float(found.group(1))
        time.sleep(0.5)
    return None


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def long_visit(client: Client, names: list[str], pid: int, visits: int = 3) -> dict:
    """The same visit `visits` times: every tab for every checkpoint (each one left and right once,
    in a ring of pairs) at the controls' largest sizes, every decoding strategy and every map split;
    the server's resident memory before and after each visit (a visit that repeats what is cached
    should not grow it)."""
    before = rss_mib(pid)
    seconds, after = [], []
    for _ in range(visits):
        start = time.perf_counter()
        pairs = visit(client, names)
        seconds.append(round(time.perf_counter() - start, 1))
        after.append(rss_mib(pid))
    return {
        "long_visit": {
            "pairs": pairs,
            "visits": visits,
            "seconds": seconds,
            "server_rss_mib_before": before,
            "server_rss_mib_after_each": after,
            "server_rss_mib_peak": max(after),
        }
    }


def visit(client: Client, names: list[str]) -> int:
    """One long visit; the number of model pairs it went through."""
    big = {name: limit.high for name, limit in LIMITS.items()}
    pairs = list(zip(names, names[1:] + names[:1]))
    for left, right in pairs:
        pair = {"left": left, "right": right}
        for strategy in STRATEGIES:
            dec = {"strategy": strategy, "temperature": 1.0, "beam_size": big["beam_size"], "seed": 1}
            client.predict(
                **pair,
                text="\n".join([f"a dog runs number {i} ." for i in range(20)]),
                samples=big["samples"],
                **dec,
                api_name="/reconstruct",
            )
            client.predict(
                **pair, a=TABLE4[0], b=TABLE4[1], steps=big["steps"], mode="slerp", **dec, api_name="/interpolate"
            )
            client.predict(
                **pair, a="a man rides .", b="a woman rides .", c="a man sings .", **dec, api_name="/analogy"
            )
            client.predict(**pair, n=big["n"], **dec, api_name="/sample")
        client.predict(**pair, text="a black dog is running on the grass .", k=big["k"], api_name="/neighbours")
        for split in ("valid", "test", "train"):
            client.predict(**pair, split=split, n=big["map_n"], colour="active unit #1", api_name="/latent_map")
        client.predict(**pair, api_name="/kl_per_dimension")
    return len(pairs)


def endpoint_calls(client: Client) -> dict:
    """Every named endpoint but the lab's, with the inputs its page shows first (a selection of 5)."""
    specs = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    calls = {}
    for name, spec in specs.items():
        if name.startswith("/lab"):
            continue
        args = {p["parameter_name"]: p["parameter_default"] for p in spec["parameters"]}
        if "ids" in args:
            args["ids"] = "0 1 2 3 4"
        calls[name] = args
    return calls


def browser_visits(url: str, pid: int, visits: int) -> dict:
    """The server's resident memory after each of `visits` identical visits in Chromium."""
    from playwright.sync_api import sync_playwright

    after, seconds = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(visits):
            start = time.perf_counter()
            context = browser.new_context()
            page = context.new_page()
            page.goto(url)
            page.locator("#rec-go").click()
            page.locator("#rec-out table").first.wait_for(timeout=60_000)
            context.close()
            seconds.append(round(time.perf_counter() - start, 2))
            after.append(rss_mib(pid))
        browser.close()
    return {
        "visits": visits,
        "seconds_p50": statistics.median(seconds),
        "server_rss_mib_after_each": after,
        "growth_mib_visits_10_to_last": round(after[-1] - after[min(9, len(after) - 1)], 1),
    }


def api_calls(client: Client, calls: dict, pid: int, total: int) -> dict:
    """The server's resident memory every 100 of `total` calls, the endpoints in turn."""
    names, rss = list(calls), [rss_mib(pid)]
    for i in range(total):
        name = names[i % len(names)]
        client.predict(**calls[name], api_name=name)
        if (i + 1) % 100 == 0:
            rss.append(rss_mib(pid))
    return {
        "calls": total,
        "server_rss_mib_every_100": rss,
        "growth_mib_call_200_to_last": round(rss[-1] - rss[min(2, len(rss) - 1)], 1),
    }


def concurrent(url: str, calls: dict, clients: int, seconds: float, pid: int) -> dict:
    """`clients` threads, each its own client, calling the endpoints in turn (each from another
    start) for `seconds`: p50 / p95 per endpoint in seconds, errors, and the server's memory after."""
    import threading

    times: dict[str, list[float]] = {name: [] for name in calls}
    errors: list[str] = []
    stop = time.monotonic() + seconds
    names = list(calls)

    def work(k: int) -> None:
        client = Client(url, verbose=False)
        i = k
        while time.monotonic() < stop:
            name = names[i % len(names)]
            start = time.perf_counter()
            try:
                client.predict(**calls[name], api_name=name)
                times[name].append(time.perf_counter() - start)
            except Exception as e:  # noqa: BLE001 (counted and reported)
                errors.append(f"{name}: {type(e).__name__}")
            i += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return round(xs[int(q * (len(xs) - 1))], 2) if xs else float("nan")

    every = [x for xs in times.values() for x in xs]
    return {
        "clients": clients,
        "seconds": seconds,
        "calls": len(every),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "p50_s": pct(every, 0.5),
        "p95_s": pct(every, 0.95),
        "per_endpoint": {
            name: {"calls": len(xs), "p50_s": pct(xs, 0.5), "p95_s": pct(xs, 0.95)} for name, xs in times.items()
        },
        "server_rss_mib_after": rss_mib(pid),
    }


def overlap_part(args) -> int:
    import core

    result = json.loads(args.out.read_text()) if args.out and args.out.is_file() else {}
    names = sorted(p.name for p in Path(args.checkpoints).iterdir() if core.is_bundle(p))
    first = next(n for n in names if n.endswith("lagging"))
    base = core.load(Path(args.checkpoints) / first)
    sentences, mu, _ = base.encode_split(core.MAP_SPLIT, core.MAP_N, args.data_dir)
    out = {"split": core.MAP_SPLIT, "sentences": len(sentences), "of": first, "k": core.OVERLAP_K, "pairs": {}}
    for name in names:
        if name != first:
            found = core.neighbour_overlap(mu, core.load(Path(args.checkpoints) / name).encode_many(sentences)[0])
            out["pairs"][name] = {
                "shared_of_k": round(found.mean * found.k, 2),
                "chance_of_k": round(found.chance * found.k, 3),
            }
    result["neighbour_overlap"] = out
    report(result, args.out)
    return 0


def load_part(args) -> int:
    result = json.loads(args.out.read_text()) if args.out and args.out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as cache:
        cache = Path(cache)
        with running_app(cache / "app.log", cache / "c", args.data_dir, args.checkpoints) as (url, _, pid):
            warm_up_seconds(cache / "app.log")
            client = Client(url, verbose=False)
            calls = endpoint_calls(client)
            for name, call in calls.items():  # each endpoint's first answer (caches filled) before measuring
                client.predict(**call, api_name=name)
            load = {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "server_rss_mib_start": rss_mib(pid),
                "browser": browser_visits(url, pid, args.visits),
                "api": api_calls(client, calls, pid, args.calls),
            }
            for clients in (16, 32):
                load[f"clients_{clients}"] = concurrent(url, calls, clients, args.seconds, pid)
            rss = [
                load["server_rss_mib_start"],
                *load["browser"]["server_rss_mib_after_each"],
                *load["api"]["server_rss_mib_every_100"],
                load["clients_16"]["server_rss_mib_after"],
                load["clients_32"]["server_rss_mib_after"],
            ]
            load["server_rss_mib_peak_sampled"] = max(rss)
            result["load"] = load
    report(result, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.explorer", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument("--data-dir")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--out", type=Path)
    p.add_argument("--part", choices=["all", "compare", "load", "overlap"], default="all")
    p.add_argument("--visits", type=int, default=50, help="--part load: browser visits")
    p.add_argument("--calls", type=int, default=1000, help="--part load: API calls")
    p.add_argument("--seconds", type=float, default=60, help="--part load: seconds of each concurrency level")
    args = p.parse_args(argv)
    if args.part == "compare":
        return compare_part(args)
    if args.part == "load":
        return load_part(args)
    if args.part == "overlap":
        return overlap_part(args)
    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as cache:
        cache = Path(cache)
        os.environ["NUMBA_CACHE_DIR"] = str(cache / "numba")  # the app inherits it: numba compiles afresh
        with running_app(cache / "app.log", cache / "c", args.data_dir, args.checkpoints) as (url, ready, _):
            result["ready_cold_s"] = round(ready, 2)
            client = Client(url, verbose=False)
            # the default pair, read from the app's own dropdowns
            values = {
                c.get("props", {}).get("elem_id"): c.get("props", {}).get("value") for c in client.config["components"]
            }
            pair = {"left": values["left-model"], "right": values["right-model"]}
            result["pair"] = list(pair.values())
            result["first_answer_cold_s"] = first_answers(client, pair)
            result["warm_up_s"] = warm_up_seconds(cache / "app.log")
        readies = []
        with ExitStack() as stack:
            for _ in range(2):  # restart twice on the warm cache; the second app serves the latencies
                stack.close()
                url, ready, pid = stack.enter_context(
                    running_app(cache / "app.log", cache / "c", args.data_dir, args.checkpoints)
                )
                readies.append(round(ready, 2))
            result["ready_warm_s"] = readies
            client = Client(url, verbose=False)
            result.update(latencies(client, pair, args.repeats))
            names = [
                c["props"]["choices"]
                for c in client.config["components"]
                if c.get("props", {}).get("elem_id") == "left-model"
            ][0]
            result.update(long_visit(client, [value for _, value in names], pid))
    report(result, args.out)
    return 0


def compare_part(args) -> int:
    from core import load, read_sentences

    result = json.loads(args.out.read_text()) if args.out and args.out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as cache:
        cache = Path(cache)
        os.environ["NUMBA_CACHE_DIR"] = str(cache / "numba")
        with running_app(cache / "app.log", cache / "c", args.data_dir, args.checkpoints) as (url, _, _):
            client = Client(url, verbose=False)
            values = {
                c.get("props", {}).get("elem_id"): c.get("props", {}).get("value") for c in client.config["components"]
            }
            pair = {"left": values["left-model"], "right": values["right-model"]}
            names = [
                v
                for _, v in [
                    c["props"]["choices"]
                    for c in client.config["components"]
                    if c.get("props", {}).get("elem_id") == "left-model"
                ][0]
            ]
            others = [n for n in names if n not in pair.values()]
            unshipped = {"left": pair["right"], "right": others[0]}  # only LaggingVAE's pairs are shipped
            unshipped2 = {"left": pair["right"], "right": others[1]}  # a fit with umap-learn's code compiled
            model = load(Path(args.checkpoints) / pair["left"])
            yours = "\n".join(read_sentences(model.corpus, "test", args.data_dir, 1000, model.config.tokenizer))
            warm_up_seconds(cache / "app.log")  # measured on the app at rest
            result["compare_view"] = {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                **compare_view(client, pair, unshipped, unshipped2, yours),
            }
    report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
