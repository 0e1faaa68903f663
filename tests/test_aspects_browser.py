"""Aspects in the browser: the dashboard against a served app with the fake aspect model, and
the extension's options and popup (headless Chromium with the extension loaded, as in
tests/test_extension_browser.py, whose browser and stand-in service these tests share)."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
import pytest

from aspect_fakes import FakePairModel
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.app import create_app
from server_process import running_app
from serving_fakes import folder_provider
from test_dashboard_browser import expect
from test_extension_browser import (  # noqa: F401 - browser and service are fixtures
    ANALYSIS,
    WATCH,
    Browser,
    FakeService,
    browser,
    open_page,
    service,
    set_storage,
)
from tiny_sklearn import save_tiny_model

pytestmark = pytest.mark.slow  # a browser and a server

XSS = "<img src=x onerror=alert(1)>"
# The emoji come before the aspect: the server's offsets count code points, JavaScript's UTF-16.
TEXTS = [f"👍👍 great crew {XSS}", "flight delayed again, terrible", "lost my bag, awful",
         "the agent was fine", "late and the crew was rude", "love the crew", "bag arrived",
         "flight was good"]
ASKED = "delay=late,delayed\nstaff=crew,attendant,agent\nluggage=bag"


@pytest.fixture(scope="module")
def aspect_app(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("aspects-browser") / "baseline"
    save_tiny_model(folder)
    app = create_app(ServeConfig(max_wait_ms=0), folder_provider(folder),
                     insights=InsightsConfig(language=None, terms_min_count=1),
                     settings=ServiceSettings(api_token=None, cors_origins=[]))
    with running_app(app) as base:
        app.state.aspect_model = FakePairModel()  # what the service's aspect model would be
        app.base = base
        yield app


@pytest.fixture
def comments(tmp_path: Path) -> Path:
    path = tmp_path / "tweets.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text"])
        writer.writerows([text] for text in TEXTS)
    return path


def dashboard(context, base: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{base}/")
    expect(page.locator("#model-name")).not_to_have_text("…")
    return page


def submit_file(page, path: Path) -> None:
    page.set_input_files("#file", str(path))
    with page.expect_response(lambda r: r.url.endswith("/v1/analyze")) as answered:
        page.click("#file-form button[type=submit]")
    return answered.value


def test_the_dashboard_shows_the_aspects_marked_as_text(
    browser: Browser, aspect_app, comments: Path, tmp_path: Path  # noqa: F811
) -> None:
    page = dashboard(browser.pristine, aspect_app.base)
    assert page.is_hidden("#aspects-section")
    page.fill("#aspects", ASKED)
    page.fill("#discover-aspects", "2")
    assert submit_file(page, comments).status == 200
    page.wait_for_selector("#aspects-section", state="visible")
    expected = httpx.post(
        f"{aspect_app.base}/v1/analyze", timeout=60,
        files={"file": (comments.name, comments.read_bytes(), "text/csv")},
        data={"aspects": '[{"name": "delay", "terms": ["late", "delayed"]}, {"name": "staff", '
                         '"terms": ["crew", "attendant", "agent"]}, {"name": "luggage", '
                         '"terms": ["bag"]}]', "discover_aspects": "2", "charts": "true"},
    ).json()
    names = [aspect["name"] for aspect in expected["aspects"]]
    assert names[:3] == ["delay", "staff", "luggage"] and len(names) == 5
    assert page.locator(".aspect h3").all_text_contents()[:3] == names[:3]
    staff = page.locator("article.aspect").nth(1)
    shown = staff.locator("dd").all_text_contents()
    aspect = expected["aspects"][1]
    assert shown[:2] == [str(aspect["count"]), f"{aspect['share'] * 100:.1f} %"]
    rows = [[cell.text_content() for cell in row.query_selector_all("td")][:3]
            for row in staff.locator("tbody tr").element_handles()]
    assert rows == [[r["label"], str(r["count"]), f"{r['share'] * 100:.1f} %"]
                    for r in aspect["breakdown"]]

    src = page.get_attribute("#chart-aspects", "src")
    assert src.startswith("data:image/svg+xml;base64,")
    assert page.evaluate("document.getElementById('chart-aspects').naturalWidth") > 0

    # The hostile comment is its characters, with the mark around the aspect's term alone.
    marked = staff.locator(".comment-text", has_text=XSS)
    assert marked.count() == 1
    assert marked.text_content() == TEXTS[0]
    assert marked.locator("mark").all_text_contents() == ["crew"]
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0

    # A suggestion adds itself to the aspects, once.
    suggestions = page.locator("#suggestions button")
    assert suggestions.count() == len(expected["discovered_aspects"]) == 2
    term = expected["discovered_aspects"][0]["term"]
    suggestions.first.click()
    suggestions.first.click()
    assert page.input_value("#aspects") == f"{ASKED}\n{term}"
    page.screenshot(path=str(tmp_path / "aspects.png"), full_page=True)
    assert page.dialogs == [] and page.errors == []
    page.close()


def test_the_dashboard_says_when_no_aspect_model_is_loaded_and_works_without_aspects(
    browser: Browser, aspect_app, comments: Path  # noqa: F811
) -> None:
    page = dashboard(browser.pristine, aspect_app.base)
    model, aspect_app.state.aspect_model = aspect_app.state.aspect_model, None
    try:
        page.fill("#aspects", "audio, video")
        assert submit_file(page, comments).status == 409
        page.wait_for_selector("#status.error")
        status = page.text_content("#status")
        assert status.startswith("This server has no aspect model loaded")
        assert "no aspect model is loaded" in status and "Clear the aspects" in status

        page.fill("#aspects", "")
        assert submit_file(page, comments).status == 200
        page.wait_for_selector("#results", state="visible")
        assert page.is_hidden("#aspects-section")
        page.fill("#aspects", "=sound")  # refused here, before any request
        page.click("#file-form button[type=submit]")
        assert page.text_content("#aspects-error") == '"=sound" has no aspect name before the =.'
    finally:
        aspect_app.state.aspect_model = model
    assert page.dialogs == []
    assert [e for e in page.errors if "409" not in e] == []
    page.close()


def test_the_extension_options_save_aspects_and_the_popup_shows_them(
    browser: Browser, service: FakeService  # noqa: F811
) -> None:
    set_storage(browser.granted, browser.granted_id, {})
    options = open_page(browser.granted, browser.granted_id, "options.html")
    options.fill("#serviceUrl", service.base)
    options.fill("#aspects", "=mic")
    options.click("#save")
    assert options.text_content("#aspects-error") == '"=mic" has no aspect name before the =.'
    options.fill("#aspects", "audio = sound, mic\nediting, host")
    options.click("#save")
    options.wait_for_selector("#status.ok >> text=/health \\(HTTP 200\\)/")
    stored = options.evaluate("() => chrome.storage.local.get(null)")
    assert stored["aspects"] == [{"name": "audio", "terms": ["sound", "mic"]},
                                 {"name": "editing", "terms": []}, {"name": "host", "terms": []}]
    options.close()
    again = open_page(browser.granted, browser.granted_id, "options.html")
    expect(again.locator("#aspects")).to_have_value("audio=sound,mic\nediting\nhost")
    again.close()

    popup = open_page(browser.granted, browser.granted_id, "popup.html", tab_url=WATCH)
    popup.wait_for_selector(".result")
    assert service.requests[-1]["json"]["aspects"] == stored["aspects"]
    names = popup.locator(".aspect-name").all_text_contents()
    assert names == [aspect["name"] for aspect in ANALYSIS["aspects"]]
    assert popup.locator(".aspect .aspect-net").first.text_content() == "net −20.0 pts"
    assert popup.locator(".aspect").first.locator(".segment").count() == 3
    assert "5 mentions" in popup.locator(".aspect-meta").first.text_content()
    assert popup.locator("img").count() == 0 and popup.dialogs == []
    popup.close()

    # Emptied, the aspects leave storage and the request.
    options = open_page(browser.granted, browser.granted_id, "options.html")
    expect(options.locator("#aspects")).not_to_have_value("")
    options.fill("#aspects", "")
    options.click("#save")
    options.wait_for_selector("#status.ok >> text=/health/")
    assert "aspects" not in options.evaluate("() => chrome.storage.local.get(null)")
    options.close()
