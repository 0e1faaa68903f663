"""The extension loaded unpacked in headless Chromium: options page, popup, its call to a service.

Two things a headless browser cannot do are supplied by the test, and only those:
- the toolbar click that opens the popup and grants `activeTab` on a YouTube tab: the popup
  page is opened as a tab, and (where a test needs a video page) an init script makes
  `chrome.tabs.query` answer with a YouTube tab;
- answering the browser's permission prompt: the unchanged extension is checked up to the
  prompt; the end-to-end tests use a copy whose manifest grants http://127.0.0.1/* at install
  (a granted origin is not prompted for again, so the options page's Save goes through).
The service is either a small local stand-in that answers like POST /v1/youtube/analyze (for
each error case) or the real one (create_app with a tiny model under uvicorn, fetching from the
fake YouTube API of tests/fake_youtube.py). Neither sends CORS headers to the extension, so a
call that succeeds went through the extension's host permission.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from fake_youtube import API_KEY, FakeVideo, FakeYouTube, thread
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.app import create_app
from server_process import running_app
from services import need_program, unavailable
from serving_fakes import folder_provider
from tiny_sklearn import save_tiny_model

pytestmark = pytest.mark.slow  # a browser per test

EXTENSION = Path(__file__).resolve().parents[1] / "extension"
ANALYSIS = json.loads((EXTENSION / "test" / "fixtures" / "analysis.json").read_text("utf-8"))
VIDEO_ID = "dQw4w9WgXcQ"
WATCH = f"https://www.youtube.com/watch?v={VIDEO_ID}"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def extension_id(folder: Path) -> str:
    """Chromium's id of an unpacked extension: the SHA-256 of its path, hex digits as a-p."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


@dataclass
class FakeService:
    """A local stand-in for the service's /health and /v1/youtube/analyze."""

    replies: dict[str, tuple[int, dict[str, str], object]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    base: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def reply(self, status: int, headers: dict[str, str], body: object) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.reply(200 if self.path == "/health" else 404, {}, {"status": "ok"})

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": body}
                )
                video = str(body.get("video", ""))
                for video_id, reply in service.replies.items():
                    if video.endswith(video_id):
                        self.reply(*reply)
                        return
                self.reply(200, {}, ANALYSIS)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@dataclass
class Browser:
    pristine: object  # playwright BrowserContext with the extension as it is
    granted: object  # ... with a copy whose manifest grants http://127.0.0.1/*
    pristine_id: str
    granted_id: str


@pytest.fixture(scope="module")
def service() -> Iterator[FakeService]:
    fake = FakeService()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def granting_copy(target: Path, origin: str) -> Path:
    """The extension with `origin` granted at install (what answering the prompt would do)."""
    shutil.copytree(EXTENSION, target)
    manifest = json.loads((target / "manifest.json").read_text("utf-8"))
    manifest["host_permissions"] = [origin]
    (target / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return target


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = need_program("/usr/bin/chromium", "chromium", "chromium-browser", what="Chromium")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("needs Playwright's Python package (the test extra)")
    root = tmp_path_factory.mktemp("extension")
    pristine = EXTENSION  # loaded as a user loads it: the repository's folder
    granted = granting_copy(root / "granted", "http://127.0.0.1/*")
    with sync_playwright() as playwright:

        def launch(folder: Path, name: str) -> object:
            return playwright.chromium.launch_persistent_context(
                str(root / name),
                executable_path=chromium,
                headless=True,
                args=[f"--disable-extensions-except={folder}", f"--load-extension={folder}", *ARGS],
            )

        contexts = [launch(pristine, "profile-pristine"), launch(granted, "profile-granted")]
        try:
            for context, folder in zip(contexts, (pristine, granted), strict=True):
                page = context.new_page()
                try:
                    page.goto(f"chrome-extension://{extension_id(folder)}/options.html")
                except Error as error:
                    unavailable(f"headless Chromium did not load the unpacked extension: {error}")
                page.close()
            yield Browser(*contexts, extension_id(pristine), extension_id(granted))
        finally:
            for context in contexts:
                context.close()


def open_page(context, extension: str, page_name: str, *, tab_url: str | None = None):
    """An extension page in a tab; with `tab_url`, chrome.tabs.query answers with that tab."""
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    if tab_url is not None:
        tab = json.dumps({"id": 1, "active": True, "url": tab_url})
        page.add_init_script(f"chrome.tabs.query = async () => [{tab}];")
    page.goto(f"chrome-extension://{extension}/{page_name}")
    return page


def set_storage(context, extension: str, values: dict) -> None:
    page = open_page(context, extension, "options.html")
    page.evaluate(
        "async (values) => { await chrome.storage.local.clear(); "
        "await chrome.storage.local.set(values); }",
        values,
    )
    page.close()


def message_of(page) -> tuple[str, str]:
    page.wait_for_selector(".message:not(.loading) .message-title")
    detail = page.locator(".message-detail")
    return page.text_content(".message-title"), detail.text_content() if detail.count() else ""


def test_popup_without_a_service_url_says_so(browser: Browser) -> None:
    set_storage(browser.pristine, browser.pristine_id, {})
    popup = open_page(browser.pristine, browser.pristine_id, "popup.html", tab_url=WATCH)
    assert message_of(popup)[0] == "The service URL is not set."
    with browser.pristine.expect_page() as opened:
        popup.click("button.action")
    options = opened.value
    options.wait_for_load_state()
    assert options.url.endswith("/options.html")
    assert options.locator("#serviceUrl").input_value() == ""
    options.close()
    popup.close()


def test_options_check_the_url_and_ask_for_permission(
    browser: Browser, service: FakeService
) -> None:
    set_storage(browser.pristine, browser.pristine_id, {})
    options = open_page(browser.pristine, browser.pristine_id, "options.html")
    options.fill("#serviceUrl", "ftp://example.org")
    options.fill("#maxComments", "0")
    options.click("#save")
    assert options.text_content("#serviceUrl-error") == (
        'The service URL must start with http:// or https://, found "ftp:".'
    )
    assert "from 1 to 10000, found 0" in options.text_content("#maxComments-error")
    assert options.text_content("#status") == "Not saved: fix the fields above."
    options.fill("#serviceUrl", "http://192.0.2.1:8000")
    assert options.locator("#insecure").is_visible(), "plain http to another machine is flagged"
    options.fill("#serviceUrl", service.base)
    options.fill("#maxComments", "50")
    options.click("#save")
    # The browser's prompt is up now; nothing is stored until it is answered.
    assert options.text_content("#status") == (
        f"Asking the browser for permission to reach {service.base}…"
    )
    assert options.evaluate("() => chrome.storage.local.get(null)") == {}
    options.close()


def test_options_show_the_stored_settings_and_forget_them(
    browser: Browser, service: FakeService
) -> None:
    stored = {"serviceUrl": service.base, "token": "tok", "maxComments": 7}
    set_storage(browser.granted, browser.granted_id, stored)
    options = open_page(browser.granted, browser.granted_id, "options.html")
    assert options.locator("#serviceUrl").input_value() == service.base
    assert options.locator("#token").input_value() == "tok"
    assert options.locator("#maxComments").input_value() == "7"
    options.click("#forget")
    options.wait_for_selector("#status.ok")
    assert options.text_content("#status") == (
        "Settings and the permission to reach the service removed."
    )
    assert options.evaluate("() => chrome.storage.local.get(null)") == {}
    assert options.locator("#serviceUrl").input_value() == ""
    options.close()


def test_popup_on_a_page_that_is_not_a_video(browser: Browser, service: FakeService) -> None:
    set_storage(browser.granted, browser.granted_id, {"serviceUrl": service.base})
    popup = open_page(browser.granted, browser.granted_id, "popup.html")  # its own tab
    assert message_of(popup)[0] == "This is not a YouTube video page."
    popup.close()


def test_popup_without_the_permission_sends_nothing(
    browser: Browser, service: FakeService
) -> None:
    set_storage(browser.pristine, browser.pristine_id, {"serviceUrl": service.base})
    before = len(service.requests)
    popup = open_page(browser.pristine, browser.pristine_id, "popup.html", tab_url=WATCH)
    assert message_of(popup)[0] == f"Permission to reach {service.base} is not granted."
    assert popup.text_content("button.action") == "Open options"
    assert len(service.requests) == before
    popup.close()


def test_options_then_popup_show_the_analysis(
    browser: Browser, service: FakeService, tmp_path: Path
) -> None:
    set_storage(browser.granted, browser.granted_id, {})
    options = open_page(browser.granted, browser.granted_id, "options.html")
    options.fill("#serviceUrl", service.base + "/")
    options.fill("#token", "tok-123")
    options.fill("#maxComments", "40")
    options.click("#save")
    options.wait_for_selector("#status.ok >> text=/health \\(HTTP 200\\)/")
    saved = f"Saved. The extension may reach {service.base}."
    assert options.text_content("#status").startswith(saved)
    stored = options.evaluate("() => chrome.storage.local.get(null)")
    assert stored == {"serviceUrl": service.base, "token": "tok-123", "maxComments": 40}
    options.close()

    popup = open_page(
        browser.granted, browser.granted_id, "popup.html", tab_url=f"{WATCH}&t=42s&si=abc"
    )
    popup.set_viewport_size({"width": 364, "height": 640})
    popup.wait_for_selector(".result")
    sent = service.requests[-1]
    assert sent["path"] == "/v1/youtube/analyze"
    assert sent["json"] == {"video": WATCH, "max_comments": 40}
    assert sent["headers"]["Authorization"] == "Bearer tok-123"
    assert sent["headers"]["Origin"] == f"chrome-extension://{browser.granted_id}"
    assert "Cookie" not in sent["headers"]

    expected = [f"{row['share'] * 100:.1f}%" for row in ANALYSIS["breakdown"]]
    assert popup.locator(".row .share").all_text_contents() == expected
    counts = [f"({row['count']})" for row in ANALYSIS["breakdown"]]
    assert popup.locator(".row .count").all_text_contents() == counts
    assert popup.locator(".row .label").all_text_contents() == ANALYSIS["labels"]
    # Text from the service shows as characters, never as markup.
    assert popup.text_content("h1.title") == ANALYSIS["source"]["video"]["title"]
    assert popup.locator(".notes li").all_text_contents() == ANALYSIS["notes"]
    assert popup.locator("img, b, main script").count() == 0
    assert popup.dialogs == []
    assert popup.locator("svg.sparkline polyline").count() == 3
    assert popup.locator("svg.sparkline rect").count() == 3
    link = popup.locator("a.dashboard")
    assert link.get_attribute("href") == f"{service.base}/#video={quote(WATCH, safe='')}"
    assert popup.text_content(".meta") == "Model: sentiment-classifier version 3 (sklearn) · 1.2 s"
    shot = tmp_path / "popup.png"
    popup.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000
    popup.close()


ERRORS = [
    (
        "rateLimit01",
        (429, {"Retry-After": "42"}, {"error": "10 a minute", "error_type": "rate_limited"}),
        "Too many analyses from this client (HTTP 429). Try again in 42 s.",
        "10 a minute",
    ),
    (
        "commentsOff",
        (422, {}, {"error": "<b>Comments</b> are disabled", "error_type": "comments_disabled"}),
        "The service could not analyse this video (HTTP 422).",
        "<b>Comments</b> are disabled",
    ),
    (
        "wrongToken1",
        (401, {}, {"error": "wrong bearer token", "error_type": "unauthorized"}),
        "The service refused the token (HTTP 401). Check the token in the extension's options.",
        "wrong bearer token",
    ),
    (
        "quotaSpent1",
        (503, {"Retry-After": "7200"}, {"error": "quota spent", "error_type": "youtube_quota"}),
        "The service could not answer (HTTP 503). Try again in 2 h.",
        "quota spent",
    ),
    (
        "crashed0001",
        (500, {}, "Internal Server Error"),
        "The service could not answer (HTTP 500).",
        "",
    ),
]


@pytest.mark.parametrize(("video_id", "reply", "title", "detail"), ERRORS)
def test_popup_shows_the_service_errors(
    browser: Browser,
    service: FakeService,
    video_id: str,
    reply: tuple,
    title: str,
    detail: str,
) -> None:
    service.replies[video_id] = reply
    set_storage(browser.granted, browser.granted_id, {"serviceUrl": service.base, "token": "t"})
    tab = f"https://www.youtube.com/shorts/{video_id}"
    popup = open_page(browser.granted, browser.granted_id, "popup.html", tab_url=tab)
    assert message_of(popup) == (title, detail)
    assert popup.locator(".message.error b").count() == 0
    popup.close()


def test_popup_when_the_service_is_down(browser: Browser) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{probe.getsockname()[1]}"
    set_storage(browser.granted, browser.granted_id, {"serviceUrl": base})
    popup = open_page(browser.granted, browser.granted_id, "popup.html", tab_url=WATCH)
    title, detail = message_of(popup)
    assert title == (
        f"Could not reach the service at {base}. "
        "Is it running, and is the URL in the options right?"
    )
    assert detail == "Failed to fetch"
    popup.close()


# --- against the real service ------------------------------------------------------------------

TOKEN = "real-token-7"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def real_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on 127.0.0.1: a tiny model, a token, a YouTube burst of 2, the fake API."""
    folder = tmp_path_factory.mktemp("real-service") / "baseline"
    save_tiny_model(folder)
    texts = ["great video, love it", "terrible sound, awful", "ok I guess", XSS,
             "love it so much", "boring and bad", "fine", "great great great"]
    threads = [thread(f"c{i}", text, likes=i, published=f"2024-05-{10 + 3 * (i % 3):02d}T12:00:00Z")
               for i, text in enumerate(texts)]
    video = FakeVideo(title=f"A song {XSS}", channel="Rick", threads=threads)
    with FakeYouTube(videos={VIDEO_ID: video}) as youtube:
        settings = ServiceSettings(api_token=SecretStr(TOKEN), youtube_api_key=SecretStr(API_KEY),
                                   youtube_base_url=youtube.url, cors_origins=[],
                                   youtube_burst=2, youtube_rate_per_minute=0.5)
        app = create_app(ServeConfig(max_wait_ms=0), folder_provider(folder),
                         insights=InsightsConfig(max_comments=50), settings=settings)
        with running_app(app) as base:
            yield base


def test_popup_against_the_real_service(
    browser: Browser, real_service: str, tmp_path: Path
) -> None:
    settings = {"serviceUrl": real_service, "token": TOKEN, "maxComments": 30}
    set_storage(browser.granted, browser.granted_id, settings)
    tab = f"https://www.youtube.com/shorts/{VIDEO_ID}?feature=share"
    popup = open_page(browser.granted, browser.granted_id, "popup.html", tab_url=tab)
    popup.set_viewport_size({"width": 364, "height": 640})
    popup.wait_for_selector(".result")
    # The same request from here: the popup must show the figures the API gives.
    api = httpx.post(f"{real_service}/v1/youtube/analyze",
                     json={"video": WATCH, "max_comments": 30},
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
    labels = [r["label"] for r in api["breakdown"]]
    assert popup.locator(".row .label").all_text_contents() == labels
    assert popup.locator(".row .share").all_text_contents() == [
        f"{r['share'] * 100:.1f}%" for r in api["breakdown"]
    ]
    assert popup.locator(".row .count").all_text_contents() == [
        f"({r['count']})" for r in api["breakdown"]
    ]
    assert popup.text_content("h1.title") == f"A song {XSS}"
    assert popup.locator(".notes li").all_text_contents() == api["notes"]
    assert popup.locator("img").count() == 0 and popup.dialogs == []
    assert api["trend"]["period"] == "day" and len(api["trend"]["buckets"]) == 7
    assert popup.locator("svg.sparkline rect").count() == 3, "a bar per day with comments"
    assert popup.text_content(".caption").startswith(
        "Daily shares, 2024-05-10 – 2024-05-16 · bars: comments per day"
    )
    assert popup.text_content(".meta").startswith("Model: sentiment")
    popup.screenshot(path=str(tmp_path / "popup-real.png"), full_page=True)
    dashboard = popup.locator("a.dashboard").get_attribute("href")
    assert dashboard == f"{real_service}/#video={quote(WATCH, safe='')}"
    page = httpx.get(dashboard.split("#")[0], timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    popup.close()

    # Two analyses spent the burst of 2: the third is a 429 with the service's words.
    popup = open_page(browser.granted, browser.granted_id, "popup.html", tab_url=tab)
    title, detail = message_of(popup)
    assert re.fullmatch(
        r"Too many analyses from this client \(HTTP 429\)\. Try again in \d+ (s|min)\.", title
    ), title
    assert detail.startswith("too many YouTube analyses from this client: at most 2 at once")
    assert popup.text_content(".message-meta") == "error_type: rate_limited"
    popup.close()


def test_the_real_service_refuses_a_wrong_token(browser: Browser, real_service: str) -> None:
    set_storage(browser.granted, browser.granted_id,
                {"serviceUrl": real_service, "token": "wrong-token"})
    popup = open_page(browser.granted, browser.granted_id, "popup.html", tab_url=WATCH)
    title, _ = message_of(popup)
    assert title == (
        "The service refused the token (HTTP 401). Check the token in the extension's options."
    )
    assert popup.text_content("button.action") == "Open options"
    popup.close()
