"""The page in a real headless Chromium (Debian's `chromium`, driven through Playwright):
`photosearch demo --batch` indexes the bundled demo photos with the shipped model, then
`photosearch serve` serves them. The page opens on the gallery (months, "load more"); searching
"a red stop sign" must show a stop sign photo; the lightbox follows the arrow keys and Esc; a
date filter narrows, and "more like this" keeps it.

Skips, saying why, where Chromium or Playwright is not installed (scripts/install-browser.sh
installs Chromium) — except under CI=true, where a missing browser fails it —, where the shipped checkpoint is not trained yet, or where the bundled
photos are absent. The screenshot goes to the test's tmp dir; its path is printed.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
from pathlib import Path

import pytest

from tests.daemon.conftest import photosearch_command, subprocess_env

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "photos"
SHIPPED_CHECKPOINT = REPO / "checkpoints" / "default.safetensors"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
QUERY = "a red stop sign"


def photos_captioned(words: str) -> set[str]:
    captions = json.loads((EXAMPLES / "captions.json").read_text())
    return {c["file_name"] for c in captions if words in c["caption"].lower()}


def start_server(library: Path, checkpoint: Path, log: Path, timeout: float = 300) -> tuple[subprocess.Popen, str]:
    """`photosearch serve --port 0` and the URL it prints once it listens."""
    args = [*photosearch_command(), "--library", str(library), "serve", "--port", "0", "--checkpoint", str(checkpoint)]
    with open(log, "w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=subprocess_env(), text=True)
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout) or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"photosearch serve did not start:\n{log.read_text()}")
    return proc, proc.stdout.readline().strip()


def cards(page) -> list[str]:
    return page.eval_on_selector_all("figure.card", "cards => cards.map(c => c.dataset.path)")


def search_in_browser(url: str, query: str, screenshot: Path) -> dict:
    """The gallery (months, load more), a search, the lightbox's keys, a filter, then "more
    like this" under it; what the page showed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # bypass_csp: Playwright's own waits evaluate script text, which the page's policy forbids.
            page = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_function("document.getElementById('status').textContent.includes('indexed')")
            page.wait_for_selector("#results[data-state=done] figure.card", timeout=60_000)
            shown = {"gallery": cards(page), "months": page.eval_on_selector_all("h2.month", "h => h.map(x => x.textContent)"),
                     "gallery_message": page.text_content("#message"), "names": page.eval_on_selector_all(
                         "figure.card .name", "n => n.map(x => [x.textContent, x.title])")}
            page.click("#load-more")
            page.wait_for_function("document.querySelectorAll('figure.card').length > 24")
            shown["gallery_more"] = cards(page)

            page.fill("#q", query)
            page.press("#q", "Enter")
            page.wait_for_function("document.getElementById('message').textContent.startsWith('Photos matching')"
                                   " && document.getElementById('results').dataset.state === 'done'", timeout=60_000)
            page.wait_for_function("[...document.querySelectorAll('#results img')].slice(0, 5)"
                                   ".every(img => img.complete && img.naturalWidth > 0)")
            shown.update({"paths": cards(page), "message": page.text_content("#message"),
                          "status": page.text_content("#status")})
            page.screenshot(path=str(screenshot))
            page.click("figure.card >> nth=0 >> button.thumb")
            page.wait_for_function("document.getElementById('viewer-img').naturalWidth > 0")
            first = page.text_content("#viewer-caption")
            page.keyboard.press("ArrowRight")
            page.wait_for_function("document.getElementById('viewer').dataset.index === '1'")
            shown["lightbox"] = [first, page.text_content("#viewer-caption")]
            page.keyboard.press("Escape")
            shown["closed"] = page.is_hidden("#viewer")

            page.fill("#from", "2100")  # no photo was taken in 2100
            page.click("#filters button[type=submit]")
            page.wait_for_function("document.getElementById('message').textContent.includes('no photos found')")
            shown["filtered_message"] = page.text_content("#message")
            page.fill("#from", "")
            page.fill("#to", "2099")
            page.click("#filters button[type=submit]")
            page.wait_for_selector("#results[data-state=done] figure.card")
            page.click("figure.card >> nth=0 >> button.thumb")
            page.click("#viewer-similar")
            page.wait_for_function("document.getElementById('message').textContent.startsWith('Photos like')"
                                   " && document.getElementById('results').dataset.state === 'done'")
            shown["similar_message"] = page.text_content("#message")
            shown["errors"] = errors
            return shown
        finally:
            browser.close()


def no_browser(reason: str) -> None:
    """Skip, saying why; in CI (CI=true) fail instead: there the browser test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, where the browser test must run")
    pytest.skip(reason)


def test_search_page_in_a_real_browser(tmp_path):
    if not CHROMIUM.exists():
        no_browser("no browser: /usr/bin/chromium is missing (install it with scripts/install-browser.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        no_browser("playwright is not installed (pip install -e '.[test]')")
    if not SHIPPED_CHECKPOINT.is_file():
        pytest.skip(f"{SHIPPED_CHECKPOINT.relative_to(REPO)} is not trained yet")
    if not (EXAMPLES / "captions.json").is_file():
        pytest.skip("the bundled demo photos (examples/photos) are not in this checkout")
    library = tmp_path / "demo-library"

    prepared = subprocess.run(
        [*photosearch_command(), "--library", str(library), "demo", "--batch", "-k", "3",
         "--results-dir", str(tmp_path / "results"), "--checkpoint", str(SHIPPED_CHECKPOINT)],
        capture_output=True, text=True, env=subprocess_env(), timeout=900)
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.count("grid: ") == 6 and "serve" in prepared.stderr

    server, url = start_server(library, SHIPPED_CHECKPOINT, tmp_path / "serve.log")
    try:
        assert url.startswith("http://127.0.0.1:"), url
        screenshot = tmp_path / "search-page.png"
        shown = search_in_browser(url, QUERY, screenshot)
        print(f"\nscreenshot: {screenshot}")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert not shown["errors"], shown["errors"]
    assert "51 photos indexed" in shown["status"]
    names = [os.path.basename(path) for path in shown["paths"]]
    expected = photos_captioned("stop sign")
    assert expected & set(names), f"none of the stop sign photos {sorted(expected)} among {names}"
    assert shown["message"].startswith(f"Photos matching “{QUERY}”")
    # The gallery: newest first in month groups, 24 at first, more on demand, every name shown.
    assert len(shown["gallery"]) == 24 and len(shown["gallery_more"]) > 24 and shown["months"]
    assert shown["gallery_message"].startswith("All photos: 24+ photos, newest first")
    assert all(name == os.path.basename(path) for name, path in shown["names"])
    first, second = shown["lightbox"]
    assert first != second and shown["closed"]
    assert "(taken 2100 to …): no photos found" in shown["filtered_message"]
    assert shown["similar_message"].startswith("Photos like") and "(taken … to 2099)" in shown["similar_message"]
    assert screenshot.stat().st_size > 10_000
