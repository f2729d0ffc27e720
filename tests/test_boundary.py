"""The request boundary, attacked through the real server's API (gradio_client and raw HTTP): every
argument that names a checkpoint, corpus or split is refused with one clear message naming the
allowed values unless it is one of them; a call short of inputs gets a message, not a traceback; and
while the attack runs the server opens or lists no file outside the checkpoint, data, cache and
Python folders (Python's audit hooks, tests/audited_app.py)."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from explorer.launch import running_app

ROOT = Path(__file__).resolve().parents[1]
NAMED = {"left", "right", "corpus", "split"}
HOSTILE = [
    "/etc",
    "/etc/passwd",
    "../../..",
    "..",
    "../../../etc/passwd",
    "flickr8k-lagging/../../../etc",
    "/proc/self/environ",
    "checkpoints/flickr8k-lagging",
    "x" * 5000,
    7,
    3.5,
    True,
    ["flickr8k-lagging"],
    {"path": "/etc/passwd"},
    "flickr8k-lagging\x00",
    "flickr8k lagging",
]
SECRETS = ("/etc", "passwd", "environ", str(ROOT), "Traceback", "internal error")


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("boundary")
    audit, log = tmp / "audit.log", tmp / "app.log"
    with running_app(log, tmp / "cache", data_dir, script="tests/audited_app.py", env={"AUDIT_LOG": str(audit)}) as (
        url,
        _,
        _,
    ):
        deadline = time.monotonic() + 300
        while "warm-up done" not in log.read_text():  # its imports (numba reads /proc/cpuinfo) are not requests'
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, audit, tmp / "cache", Path(data_dir)
    assert "Traceback" not in log.read_text(), log.read_text()


def shown(result) -> str:
    """The words of an endpoint's status output (its last), tags and styles stripped."""
    html = result[-1] if isinstance(result, (tuple, list)) else result
    return " ".join(re.sub(r"<style>.*?</style>|<[^>]+>", " ", html or "", flags=re.S).split())


def test_every_named_argument_is_checked_before_any_file_is_touched(server):
    url, audit, cache, data = server
    client = Client(url, verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert len(endpoints) >= 12
    start = len(audit.read_text().splitlines())
    calls = 0
    for api_name, spec in endpoints.items():
        params = {p["parameter_name"]: p["parameter_default"] for p in spec["parameters"]}
        for arg in sorted(NAMED & set(params)):
            for value in HOSTILE:
                text = shown(client.predict(**{**params, arg: value}, api_name=api_name))
                calls += 1
                assert "is not one of the names offered here" in text, (api_name, arg, value, text)
                allowed = {
                    "left": "flickr8k-lagging",
                    "right": "flickr8k-vae-mine",
                    "corpus": "flickr8k",
                    "split": "valid",
                }
                assert allowed[arg] in text, (api_name, arg, text)
                assert not any(s in text for s in SECRETS), (api_name, arg, value, text)
    assert calls >= 10 * 2 * len(HOSTILE)  # the two models of ten endpoints, the lab's corpus, the map's split

    for api_name, spec in endpoints.items():  # a call that leaves out its inputs
        answer = httpx.post(f"{url}gradio_api/call/{api_name.lstrip('/')}", json={"data": []}).json()
        stream = httpx.get(f"{url}gradio_api/call/{api_name.lstrip('/')}/{answer['event_id']}", timeout=30).text
        if spec["parameters"]:
            assert f"{api_name} takes {len(spec['parameters'])} inputs" in stream, (api_name, stream)
        assert "null" not in stream.split("data:", 1)[1][:20], (api_name, stream)

    allowed_roots = [
        ROOT / "checkpoints",
        data.resolve(),
        cache,
        Path(sys.prefix),
        Path(sys.base_prefix),
        *Path(tempfile.gettempdir()).glob("vae-mine-explorer-*"),
        ROOT / "explorer",
        ROOT / "core",
    ]
    touched = [line.split("\t", 1)[1] for line in audit.read_text().splitlines()[start:]]
    outside = sorted({p for p in touched if not any(Path(p).is_relative_to(r) for r in allowed_roots)})
    assert not outside, outside
    assert not any("passwd" in p or p.startswith("/etc") or "environ" in p for p in touched)


def test_a_well_formed_call_still_works(server):
    url, *_ = server
    client = Client(url, verbose=False)
    result = client.predict(left="flickr8k-lagging", right=None, api_name="/kl_per_dimension")
    assert "is not one of" not in shown(result)
    text = shown(
        client.predict(left="flickr8k-lagging", right="", text="a dog runs .\na cat sits .", api_name="/decoder_use")
    )
    assert "nats against a prior draw" in text and "only the first was used" in text


def test_uploads_cross_origin_writes_and_long_config_queries_are_refused(server):
    url, *_ = server
    for route in ("gradio_api/upload", "gradio_api/component_server"):
        answer = httpx.post(f"{url}{route}", files={"files": ("s.txt", b"a dog .\n")})
        assert answer.status_code == 403 and "no uploads" in answer.text, (route, answer.status_code)
    foreign = httpx.post(f"{url}gradio_api/call/sample", json={"data": []}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "another site" in foreign.text
    same = httpx.post(f"{url}gradio_api/call/sample", json={"data": []}, headers={"Origin": url.rstrip("/")})
    assert same.status_code == 200
    long = httpx.get(f"{url}config?" + "a" * 20_000)
    assert long.status_code == 414
    shared = Path(tempfile.gettempdir()) / "gradio" / "vae-mine-probe.txt"  # another Gradio app's temp folder
    shared.parent.mkdir(exist_ok=True)
    shared.write_text("not yours")
    try:
        assert "not yours" not in httpx.get(f"{url}gradio_api/file={shared}").text
    finally:
        shared.unlink()


def test_your_sentences_stay_in_their_request(server, tmp_path):
    """Hostile "your sentences" and selections get a message; a visitor's sentences reach no file the
    server writes (cache, log, Gradio's upload folder) and no other visitor's answer."""
    url, audit, cache, data = server
    client = Client(url, verbose=False)
    pair = {"left": "flickr8k-lagging", "right": "flickr8k-vae-mine-infonce"}
    mapped = {**pair, "split": "valid", "n": 2000, "colour": "sentence length", "search": ""}  # the atlas's map
    for yours, wanted in (
        ("a dog .\n" * 300_000, "at most 2 MB"),
        ("a dog .\x00", "binary file"),
        ("a dog .\n" * 10_001, "at most 10,000"),
        ({"path": "/etc/passwd"}, "must be text"),
        (["a dog ."], "must be text"),
    ):
        text = shown(client.predict(**mapped, yours=yours, api_name="/latent_map"))
        assert wanted in text and not any(s in text for s in SECRETS), (wanted, text[:300])
        text = shown(client.predict(**pair, text="a dog .", k=3, yours=yours, api_name="/neighbours"))
        assert wanted in text, (wanted, text[:300])
    # a lone surrogate: JSON can carry it (as an escape), Python's client cannot, so it goes by the raw API
    body = json.dumps({"data": [pair["left"], pair["right"], "valid", 2000, "sentence length", "", "a dog \ud800 ."]})
    event = httpx.post(
        f"{url}gradio_api/call/latent_map", content=body, headers={"content-type": "application/json"}
    ).json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/latent_map/{event}", timeout=60).text
    assert "unpaired surrogate" in stream and "Traceback" not in stream, stream[:300]
    for search, colour, wanted in (
        ({"a": 1}, "sentence length", "must hold text"),
        ("dog", ["x"], "unknown colouring"),
        ("x" * 5_000, "sentence length", "at most 200"),
    ):
        for api, extra in (("/latent_map", {"yours": ""}), ("/compare_maps", {})):
            args = {**mapped, "search": search, "colour": colour, **extra}
            if api == "/compare_maps" and colour == "sentence length":
                args["colour"] = "the searched words"
            text = shown(client.predict(**args, api_name=api))
            assert wanted in text and "Traceback" not in text and "internal error" not in text, (
                api,
                wanted,
                text[:300],
            )
    for ids in ("../../etc/passwd", "1 2 -3", "99999999999999999999", {"ids": 1}, "²", "7" * 5000, "١٢"):
        text = shown(client.predict(**pair, split="valid", n=2000, ids=ids, api_name="/compare_selection"))
        assert ("not sentence numbers" in text or "must be text" in text) and "Traceback" not in text, text[:300]

    secret = "zyxwv quokka telescope marmalade"
    mine = client.predict(**mapped, yours=f"{secret} .\na dog runs on the beach .", api_name="/latent_map")
    assert "2 of your sentences placed" in shown(mine)
    other = Client(url, verbose=False).predict(**mapped, yours="", api_name="/latent_map")
    assert "your sentences" not in shown(other)
    assert secret not in repr(other) and "zyxwv" not in repr(
        Client(url, verbose=False).predict(**pair, text="a dog .", k=50, yours="", api_name="/neighbours")
    )
    written = (
        [p for p in cache.rglob("*") if p.is_file()]
        + [cache.parent / "app.log"]
        + [p for p in (Path(tempfile.gettempdir()) / "gradio").rglob("*") if p.is_file()]
    )
    assert not [p for p in written if b"zyxwv" in p.read_bytes()]


def test_oversized_text_extra_inputs_and_private_handlers_get_a_message(server):
    """Every text argument is capped before it is read (a 50 MB sentence once took 66 s of CPU); a call
    with more inputs than the endpoint takes is refused, not trimmed; the page's own handlers (no API
    name, reached by fn_index) take garbage without a traceback (the fixture reads the log at the end)."""
    url, *_ = server
    client = Client(url, verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    texts = 0
    for api_name, spec in endpoints.items():
        params = {p["parameter_name"]: p["parameter_default"] for p in spec["parameters"]}
        for arg in sorted(
            {"a", "b", "c", "text", "search", "ids", "yours", "colour", "mode", "strategy"} & set(params)
        ):
            huge = "a dog runs .\n" * 400_000  # 4.8 MB, over every cap (yours: 2 MB)
            text = shown(client.predict(**{**params, arg: huge}, api_name=api_name))
            assert f"{arg} holds {len(huge):,} characters; at most" in text, (api_name, arg, text[:300])
            texts += 1
        route = f"{url}gradio_api/call/{api_name.lstrip('/')}"
        event = httpx.post(route, json={"data": [*params.values(), "extra"]}).json()["event_id"]
        stream = httpx.get(f"{route}/{event}", timeout=60).text
        assert f"{api_name} takes {len(params)} inputs" in stream and f"this call sent {len(params) + 1}" in stream, (
            stream
        )
    assert texts >= 12

    config = httpx.get(f"{url}config").json()
    private = [d for d in config["dependencies"] if d.get("backend_fn") and d.get("api_visibility") == "private"]
    assert sum(len(d["inputs"]) == 1 for d in private) >= 3, "the decoding radios' handlers were expected"
    for dep in private:
        for values in (["no such strategy"] * len(dep["inputs"]), [{"x": [1]}] * len(dep["inputs"])):
            answer = httpx.post(
                f"{url}gradio_api/run/predict",
                json={"fn_index": dep["id"], "data": values, "session_hash": "probe", "event_data": None},
            )
            assert answer.status_code < 500, (dep["id"], answer.status_code, answer.text[:300])
            assert "Traceback" not in answer.text, (dep["id"], answer.text[:300])
