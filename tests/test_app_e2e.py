"""End to end: the real app (python app.py) on the shipped checkpoints, driven in headless Chromium."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from explorer.launch import running_app

pytestmark = pytest.mark.usefixtures("corpora")  # reads the corpora (see conftest)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]


@contextmanager
def serve(data_dir, tmp: Path):
    """The real app on a free port; yields its URL; its log must hold no traceback."""
    log = tmp / "app.log"
    with running_app(log, tmp / "cache", data_dir) as (url, _):
        yield url
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def app_url(data_dir, tmp_path_factory):
    with serve(data_dir, tmp_path_factory.mktemp("app")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.goto(app_url)
    pg.wait_for_selector("#rec-go")
    yield pg
    pg.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_every_tab_produces_its_output(page):
    expect(page.locator("#left-model input")).to_have_value(re.compile("^LaggingVAE"))
    expect(page.locator("#right-model input")).to_have_value(re.compile("^VAE-MINE"))

    page.click("#rec-go")
    expect(page.locator("#rec-out table").first).to_contain_text("from the mean", timeout=30_000)
    assert page.locator("#rec-out table").count() == 4  # two sentences, two models

    open_tab(page, "Interpolate")
    page.click("#int-go")
    expect(page.locator("#int-out tbody tr")).to_have_count(10, timeout=30_000)
    expect(page.locator("#int-out tbody tr").last).to_contain_text("1.00")

    open_tab(page, "Sample")
    page.click("#smp-go")
    expect(page.locator("#smp-out")).to_contain_text("distinct-2", timeout=30_000)
    expect(page.locator("#smp-out tbody tr")).to_have_count(20)

    open_tab(page, "Neighbours")
    page.click("#nb-go")
    expect(page.locator("#nb-out")).to_contain_text("training sentences indexed", timeout=120_000)
    expect(page.locator("#nb-out tbody tr")).to_have_count(20)

    open_tab(page, "Latent map")
    page.click("#map-go")  # the default: 2,000 validation sentences
    expect(page.locator("#map-status")).to_contain_text("2,000 flickr8k/valid sentences", timeout=180_000)
    expect(page.locator("#map-status")).not_to_contain_text("error")
    expect(page.locator("#map-left .js-plotly-plot")).to_be_visible()
    expect(page.locator("#bars-right .js-plotly-plot")).to_be_visible()

    open_tab(page, "Posterior collapse")
    expect(page.locator("#col-table")).to_contain_text("VAE-MINE")
    expect(page.locator("#col-curves .js-plotly-plot")).to_be_visible()


def test_markup_is_shown_as_text_and_bad_input_gets_a_message(page):
    page.on("dialog", lambda d: pytest.fail(f"a script ran: {d.message}"))
    box = page.locator("#rec-text textarea")
    box.fill('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> 🦄 qqzzx')
    page.click("#rec-go")
    expect(page.locator("#rec-out")).to_contain_text('<img src=x onerror="window.__pwned=1">', timeout=30_000)
    assert page.locator("#rec-out img").count() == 0 and page.locator("#rec-out script").count() == 0
    assert page.evaluate("window.__pwned") is None
    expect(page.locator("#rec-out")).to_contain_text("read as <unk>")
    box.fill("")
    page.click("#rec-go")
    expect(page.locator("#rec-out .vm-err")).to_contain_text("enter one or more sentences", timeout=30_000)
    box.fill("x" * 10_000)
    page.click("#rec-go")
    expect(page.locator("#rec-out")).to_contain_text("from the mean", timeout=30_000)


def test_many_browser_tabs_at_once(browser, app_url):
    pages = [browser.new_page() for _ in range(4)]
    try:
        for pg in pages:
            pg.goto(app_url)
            pg.wait_for_selector("#rec-go")
            open_tab(pg, "Sample")
        for pg in pages:
            pg.click("#smp-go")
        for pg in pages:
            expect(pg.locator("#smp-out")).to_contain_text("distinct-2", timeout=60_000)
            expect(pg.locator("#smp-out tbody tr")).to_have_count(20)
    finally:
        for pg in pages:
            pg.close()


def test_without_corpus_the_app_starts_and_says_what_is_missing(browser, tmp_path):
    with serve(tmp_path / "no-data", tmp_path) as url:
        pg = browser.new_page()
        pg.goto(url)
        expect(pg.get_by_text("corpus data missing for flickr8k")).to_be_visible(timeout=30_000)
        pg.click("#rec-go")
        expect(pg.locator("#rec-out table").first).to_contain_text("from the mean", timeout=30_000)
        open_tab(pg, "Neighbours")
        pg.click("#nb-go")
        expect(pg.locator("#nb-out .vm-err").first).to_contain_text("corpus file not found", timeout=30_000)
        pg.close()


def test_api_has_one_named_endpoint_per_action(app_url):
    from gradio_client import Client

    api = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)
    endpoints = api["named_endpoints"]
    assert set(endpoints) == {"/reconstruct", "/interpolate", "/analogy", "/sample", "/neighbours", "/latent_map",
                              "/kl_per_dimension", "/lab", "/lab_stop"}
    names = lambda e: [p["parameter_name"] for p in endpoints[e]["parameters"]]  # noqa: E731
    assert names("/reconstruct") == ["left", "right", "text", "samples", "strategy", "temperature", "beam_size", "seed"]
    assert names("/sample") == ["left", "right", "n", "strategy", "temperature", "beam_size", "seed"]
    assert not api["unnamed_endpoints"]
