"""Screenshots of each explorer tab, taken in headless Chromium from the running app.

    .venv/bin/python scripts/screenshots.py --out docs/screenshots [--data-dir DIR]

The Neighbours and Latent-map tabs show corpus sentences (the map on hover only), so
`neighbours.png` is written to --private-out instead, and `compare.png` holds only the compare
view's maps and status (its tables of corpus sentences go to --private-out as `compare-full.png`):
corpora are never committed. The sentences typed as "your sentences" are this script's own.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.launch import running_app  # noqa: E402

OWN = [
    "my dog chases the ball across the garden .",
    "a child paints a picture at the kitchen table .",
    "two friends ride their bikes down a hill .",
    "an old man reads a newspaper on a bench .",
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    p.add_argument("--private-out", type=Path, default=Path("runs/screenshots"))
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument("--data-dir")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.private_out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as cache,
        running_app(Path(cache) / "app.log", Path(cache) / "c", args.data_dir, args.checkpoints) as (url, _, _),
    ):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(url)
            page.wait_for_selector("#rec-go")

            def shot(name: str, folder: Path = args.out) -> None:
                page.wait_for_timeout(500)
                page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
                print("wrote", folder / f"{name}.png")

            page.click("#rec-go")
            expect(page.locator("#rec-out table").first).to_be_visible(timeout=60_000)
            shot("reconstruct")
            page.get_by_role("tab", name="Interpolate").click()
            page.click("#int-go")
            expect(page.locator("#int-out table")).to_be_visible(timeout=60_000)
            page.click("#ana-go")
            expect(page.locator("#ana-out table")).to_be_visible(timeout=60_000)
            expect(page.locator("#int-plot .js-plotly-plot")).to_be_visible()
            page.click("#share-button")  # the link to this view, in its box
            expect(page.locator("#share-link textarea, #share-link input").first).to_have_value(re.compile("int-go"))
            shot("interpolate")
            page.get_by_role("tab", name="Sample").click()
            page.click("#smp-go")
            expect(page.locator("#smp-out table").first).to_be_visible(timeout=60_000)
            shot("sample")
            page.get_by_role("tab", name="Neighbours").click()
            page.click("#nb-go")
            expect(page.locator("#nb-out table").first).to_be_visible(timeout=180_000)
            shot("neighbours", args.private_out)
            page.get_by_role("tab", name="Latent map").click()
            page.locator("#map-yours-panel").get_by_text("Your sentences").first.click()
            page.locator("#map-yours textarea").fill("\n".join(OWN))
            page.locator("#map-search input, #map-search textarea").first.fill("guitar")
            page.click("#map-go")
            expect(page.locator("#map-status")).to_contain_text("of your sentences placed", timeout=300_000)
            page.click("#probe-go")
            expect(page.locator("#probe-out table").first).to_be_visible(timeout=60_000)
            shot("latent-map")
            page.click("#cmp-go")
            expect(page.locator("#cmp-overlap")).to_contain_text("Mean overlap", timeout=300_000)
            plot = page.locator("#cmp-map .js-plotly-plot")
            plot.scroll_into_view_if_needed()
            page.wait_for_function(
                "() => { const gd = document.querySelector('#cmp-map .js-plotly-plot');"
                " return gd && gd._ev && gd._ev.vmLinked; }",
                timeout=30_000,
            )
            page.wait_for_timeout(500)
            page.mouse.move(5, 5)
            # a box selection in the left map around a point, wherever the layout put it (as the e2e test drags)
            x, y = page.evaluate(
                """() => { const gd = document.querySelector('#cmp-map .js-plotly-plot');
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                const pt = gd.calcdata[0][5];
                return [r.left + xa._offset + xa.c2p(pt.x), r.top + ya._offset + ya.c2p(pt.y)]; }"""
            )
            page.mouse.move(x - 50, y - 50)
            page.mouse.down()
            page.mouse.move(x, y - 10, steps=8)
            page.mouse.move(x + 50, y + 50, steps=8)
            page.mouse.up()
            expect(page.locator("#cmp-selection table")).to_be_visible(timeout=120_000)
            shot("compare-full", args.private_out)
            page.locator("#cmp-go").scroll_into_view_if_needed()
            page.evaluate("document.querySelector('#cmp-go').scrollIntoView({block: 'start'})")
            page.wait_for_timeout(1500)  # a viewport shot: a full-page one resizes the page and plotly redraws
            top, bottom = page.locator("#cmp-go").bounding_box(), plot.bounding_box()
            page.screenshot(
                path=str(args.out / "compare.png"),
                clip={
                    "x": 0,
                    "y": max(0, top["y"] - 10),
                    "width": 1500,
                    "height": bottom["y"] + bottom["height"] - top["y"] + 20,
                },
            )
            print("wrote", args.out / "compare.png")
            page.get_by_role("tab", name="Posterior collapse").click()
            page.click("#kl-go")
            expect(page.locator("#kl-plot .js-plotly-plot")).to_be_visible(timeout=60_000)
            page.click("#use-go")
            expect(page.locator("#use-out table").first).to_be_visible(timeout=60_000)
            page.click("#replay-go")
            expect(page.locator("#replay-status")).to_contain_text("saved epochs", timeout=60_000)
            page.click("#lab-go")
            expect(page.locator("#lab-status")).to_contain_text("finished", timeout=120_000)
            shot("posterior-collapse")
            page.click("#lab-stop")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
