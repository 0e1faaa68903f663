"""The dashboard end to end: headless Chromium (Debian's) driven by Playwright against a real
`sentiment-pipeline serve` on 127.0.0.1 with the tiny scikit-learn model."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from fake_youtube import API_KEY, FakeVideo, FakeYouTube, thread
from sentiment_pipeline.insights.report import comments_csv
from sentiment_pipeline.insights.result import AnalysisResult
from sentiment_pipeline.paths import ProjectPaths
from server_process import serving
from services import need_program, unavailable
from tiny_sklearn import save_tiny_model

pytestmark = pytest.mark.slow  # a browser and a server process per test
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"
FORMULA = "=HYPERLINK(\"http://evil.example\",\"click\")"
SPANISH = "El vuelo llegó muy tarde y perdieron mi maleta otra vez, qué desastre de aerolínea"
TOKEN = "dashboard-token-5d1"
VIDEO_ID = "dQw4w9WgXcQ"
FIELDS = {"time_column": "tweet_created", "time_format": "%d-%m-%Y %H.%M",
          "likes_column": "retweet_count", "author_column": "name"}


def comments_file(folder: Path) -> Path:
    """Airline-style tweets over three days; the XSS text is the most liked negative one."""
    texts = ["great crew, thanks for the upgrade", "lost my bag again, terrible service",
             "flight was on time", "delayed three hours and nobody told us", FORMULA,
             "thank you for the lovely flight", SPANISH]
    rows = [{"name": f"user{i}", "text": text, "tweet_created": f"{24 + i % 3}-02-2015 1{i}.05",
             "retweet_count": i} for i, text in enumerate(texts)]
    rows.append({"name": "mallory", "text": XSS, "tweet_created": "25-02-2015 09.30",
                 "retweet_count": 99})
    path = folder / "tweets.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@contextlib.contextmanager
def serve(project: ProjectPaths, **env: str) -> Iterator[str]:
    """`sentiment-pipeline serve` on a free port until the block ends; yields its base URL."""
    model_dir = project.models_dir / "tiny"
    if not model_dir.exists():
        save_tiny_model(model_dir)
    args = ["--model", str(model_dir), "--set", "serve.reload_interval_s=0",
            "--set", "serve.max_wait_ms=0"]
    with serving(args, cwd=project.root, env=env) as served:
        yield served.url


@pytest.fixture
def browser():
    need_program(CHROMIUM, what="Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("needs Playwright's Python package (the test extra)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def expect(locator):
    """Playwright's retrying assertions (no page-side eval, which the dashboard's CSP forbids)."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=30_000)
    return playwright_expect(locator)


class Watched:
    """A page with its dialogs, console errors and uncaught exceptions recorded."""

    def __init__(self, browser, **options) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900},
                                     accept_downloads=True, **options)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message),
                                               dialog.dismiss()))
        self.page.on("console", lambda message: message.type == "error"
                     and self.errors.append(message.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))


def analyse_file(page, path: Path) -> None:
    for name, value in FIELDS.items():
        page.fill(f"#{name.replace('_', '-')}", value)
    page.set_input_files("#file", str(path))
    page.click("#file-form button[type=submit]")
    page.wait_for_selector("#results", state="visible", timeout=60_000)


def api_analysis(base: str, path: Path, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{base}/v1/analyze", headers=headers, timeout=60,
                          files={"file": (path.name, path.read_bytes(), "text/csv")},
                          data={**FIELDS, "charts": "true"})
    assert response.status_code == 200, response.text
    return response.json()


def same_csv(got: str, expected: str) -> None:
    """Equal cell by cell; numbers equal as numbers (JS and Python print floats differently)."""
    got_rows, expected_rows = (list(csv.reader(io.StringIO(t))) for t in (got, expected))
    assert got_rows[0] == expected_rows[0] and len(got_rows) == len(expected_rows)
    for got_row, expected_row in zip(got_rows, expected_rows, strict=True):
        for mine, theirs in zip(got_row, expected_row, strict=True):
            try:
                assert float(mine) == pytest.approx(float(theirs))
            except ValueError:
                assert mine == theirs


def test_the_dashboard_analyses_a_file_and_shows_comments_as_text(project, browser, tmp_path):
    path = comments_file(tmp_path)
    with serve(project) as base:
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{base}/")
        expect(page.locator("#model-name")).not_to_have_text("…")
        assert page.is_hidden("#token-panel")

        analyse_file(page, path)
        expected = api_analysis(base, path)
        with page.expect_download() as download:
            page.click("#download-csv")
        downloaded = Path(download.value.path()).read_text(encoding="utf-8")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        counts = expected["counts"]
        assert counts["comments"] == 8 and counts["other_language"] == 1
        assert page.text_content("#fig-comments") == f"{counts['comments']:,}"
        assert page.text_content("#fig-analysed") == f"{counts['analysed']:,}"
        assert page.text_content("#fig-other-language") == f"{counts['other_language']:,}"
        assert page.text_content("#fig-model") == expected["model"]["name"]
        shown = [[cell.text_content() for cell in row.query_selector_all("td")][:3]
                 for row in page.query_selector_all("#breakdown-rows tr")]
        assert shown == [[row["label"], f"{row['count']:,}", f"{100 * row['share']:.1f} %"]
                         for row in expected["breakdown"]]
        assert page.text_content("#source-title") == "tweets.csv"
        notes = [item.text_content() for item in page.query_selector_all("#notes li")]
        assert notes == expected["notes"]

        # The XSS comment is on the page as its characters, and no markup ran or was made.
        xss = page.locator(".comment-text", has_text=XSS)
        assert xss.count() >= 1 and xss.first.text_content() == XSS
        assert page.locator("img[src='x']").count() == 0
        assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
        assert watched.dialogs == []
        top = expected["top_comments"][expected["comments"][-1]["label"]]
        assert top[0]["text"] == XSS  # most liked of its class: shown first there

        for name in ("breakdown", "trend", "terms"):
            src = page.get_attribute(f"#chart-{name}", "src")
            assert src.startswith("data:image/svg+xml;base64,")
            assert page.evaluate(f"document.getElementById('chart-{name}').naturalWidth") > 0
        same_csv(downloaded, comments_csv(AnalysisResult.model_validate(expected)))
        assert f"\"'{FORMULA.replace(chr(34), chr(34) * 2)}\"" in downloaded  # guarded
        assert watched.errors == []  # nothing the CSP blocked, no script error
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_with_a_token_the_dashboard_asks_for_it_and_keeps_it_for_the_session(
    project, browser, tmp_path
):
    path = comments_file(tmp_path)
    with serve(project, SENTIMENT_PIPELINE_API_TOKEN=TOKEN) as base:
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{base}/")
        page.wait_for_selector("#token-panel", state="visible")
        assert "needs an access token" in page.text_content("#status")

        page.fill("#token-input", "wrong")
        page.click("#token-form button[type=submit]")
        expect(page.locator("#token-message")).to_contain_text("not accepted")
        assert page.is_visible("#token-panel")

        page.fill("#token-input", TOKEN)
        page.click("#token-form button[type=submit]")
        expect(page.locator("#model-name")).not_to_have_text("…")
        assert page.is_hidden("#token-panel")
        storage = page.evaluate("[JSON.stringify(sessionStorage), localStorage.length]")
        assert TOKEN in json.loads(storage[0]).values() and storage[1] == 0

        analyse_file(page, path)
        expected = api_analysis(base, path, TOKEN)
        assert page.text_content("#fig-analysed") == f"{expected['counts']['analysed']:,}"
        page.screenshot(path=str(tmp_path / "dashboard-token.png"), full_page=True)
        # 401s while asking count as console errors in Chromium; nothing else may.
        assert [e for e in watched.errors if "401" not in e] == []
        assert watched.dialogs == []


def test_the_header_shows_the_model_once_the_token_comes_after_a_refused_analysis(
    project, browser, tmp_path
):
    # Finding 7 of issue 17: asked for an analysis before the token, the dashboard retried
    # only the analysis and its header kept saying "Model: …".
    path = comments_file(tmp_path)
    with serve(project, SENTIMENT_PIPELINE_API_TOKEN=TOKEN) as base:
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{base}/")
        page.wait_for_selector("#token-panel", state="visible")
        for name, value in FIELDS.items():
            page.fill(f"#{name.replace('_', '-')}", value)
        page.set_input_files("#file", str(path))
        with page.expect_response(lambda r: r.url.endswith("/v1/analyze")) as refused:
            page.click("#file-form button[type=submit]")
        assert refused.value.status == 401

        page.fill("#token-input", TOKEN)
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#results", state="visible", timeout=60_000)
        expect(page.locator("#model-name")).not_to_have_text("…")
        assert [e for e in watched.errors if "401" not in e] == []


def test_youtube_comments_link_to_themselves_with_times_in_the_browsers_zone(project, browser):
    threads = [thread("UgwA1", "great video, love it", likes=1, published="2024-05-10T12:00:00Z"),
               thread("UgwB2", "terrible sound, awful", likes=3,
                      published="2024-05-11T08:30:00Z")]
    with FakeYouTube(videos={VIDEO_ID: FakeVideo(threads=threads)}) as youtube, serve(
        project, SENTIMENT_PIPELINE_YOUTUBE_API_KEY=API_KEY,
        SENTIMENT_PIPELINE_YOUTUBE_BASE_URL=youtube.url,
    ) as base:
        watched = Watched(browser, timezone_id="Europe/Paris", locale="en-GB")
        page = watched.page
        page.goto(f"{base}/")
        page.fill("#video", VIDEO_ID)
        page.click("#youtube-form button[type=submit]")
        page.wait_for_selector("#results", state="visible", timeout=60_000)
        links = page.locator("#uncertain a.comment-link")
        hrefs = sorted(links.nth(i).get_attribute("href") for i in range(links.count()))
        assert hrefs == [f"https://www.youtube.com/watch?v={VIDEO_ID}&lc={cid}"
                         for cid in ("UgwA1", "UgwB2")]
        assert links.first.get_attribute("rel") == "noopener noreferrer"
        shown = page.text_content("#uncertain")
        assert "10 May 2024, 14:00 CEST" in shown and "11 May 2024, 10:30 CEST" in shown
        assert "1 like ·" in shown and "3 likes" in shown
        assert watched.errors == [] and watched.dialogs == []


def test_the_extension_link_fills_the_video_field_in_as_text(project, browser):
    link = "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=1s\"><img src=x onerror=alert(1)>"
    with serve(project) as base:
        watched = Watched(browser)
        page = watched.page
        page.goto(f"{base}/#video={quote(link, safe='')}")
        expect(page.locator("#model-name")).not_to_have_text("…")
        assert page.input_value("#video") == link
        assert page.locator("img[src='x']").count() == 0 and watched.dialogs == []
        fresh = browser.new_page()  # a new load: not decodable, said, nothing filled in
        fresh.goto(f"{base}/#video=%E0%A4%A")
        expect(fresh.locator("#status")).to_contain_text("#video=")
        assert fresh.input_value("#video") == ""
