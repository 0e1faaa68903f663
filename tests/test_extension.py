"""The browser extension (extension/): its Node tests; its manifest and pages, read statically."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sentiment_pipeline.insights.comments import InsightsError
from sentiment_pipeline.insights.result import AnalysisResult
from sentiment_pipeline.insights.youtube_links import parse_video_id
from sentiment_pipeline.serving.errors import INSIGHTS_STATUS
from services import need_program

EXTENSION = Path(__file__).resolve().parents[1] / "extension"
MANIFEST = json.loads((EXTENSION / "manifest.json").read_text(encoding="utf-8"))
PAGES = ["popup.html", "options.html"]
IMPORT = re.compile(r"""^\s*import\s[^;]*?from\s+["']([^"']+)["']""", re.MULTILINE)


class Tags(HTMLParser):
    """The tags of a page with their attributes, and the text inside each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.script_text.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text[-1] += data


def parse_page(name: str) -> Tags:
    parser = Tags()
    parser.feed((EXTENSION / name).read_text(encoding="utf-8"))
    return parser


def extension_scripts() -> list[Path]:
    return sorted([*EXTENSION.glob("*.js"), *(EXTENSION / "lib").glob("*.js")])


@pytest.mark.slow
def test_node_suite_passes() -> None:
    """`node --test` over extension/test/: URL parsing, view model, rendering, error mapping."""
    node = need_program("node", "nodejs", what="Node.js")
    files = sorted(str(p.relative_to(EXTENSION)) for p in (EXTENSION / "test").glob("*.test.mjs"))
    assert len(files) >= 5, files
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    passed = re.search(r"^# pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", output, re.MULTILINE)
    assert passed and failed, output[-2000:]
    assert int(failed.group(1)) == 0
    assert int(passed.group(1)) >= 35, f"only {passed.group(1)} Node tests ran"


def test_manifest_is_mv3_with_run_time_host_permission_only() -> None:
    assert MANIFEST["manifest_version"] == 3
    assert MANIFEST["name"] and re.fullmatch(r"\d+(\.\d+){0,3}", MANIFEST["version"])
    assert set(MANIFEST["permissions"]) <= {"storage", "activeTab"}
    assert "host_permissions" not in MANIFEST, "hosts are asked for at run time, never at install"
    assert set(MANIFEST["optional_host_permissions"]) <= {"http://*/*", "https://*/*"}
    for key in ("content_scripts", "background", "web_accessible_resources",
                "externally_connectable", "update_url", "key"):
        assert key not in MANIFEST, f"manifest.json has {key!r}; the extension needs none"


def test_manifest_keeps_the_default_csp_and_loads_no_remote_code() -> None:
    csp = MANIFEST.get("content_security_policy", {})
    for policy in csp.values() if isinstance(csp, dict) else [csp]:
        assert not re.search(r"unsafe-(eval|inline)|https?:|\*|data:|blob:", policy), policy
    for page in PAGES:
        tags = parse_page(page)
        scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
        assert scripts, page
        for attrs in scripts:
            assert attrs.get("type") == "module" and attrs.get("src"), (page, attrs)
        assert all(not text.strip() for text in tags.script_text), f"inline script in {page}"
        for tag, attrs in tags.tags:
            handlers = [name for name in attrs if name.startswith("on")]
            assert not handlers, f"inline handler {handlers} on <{tag}> in {page}"
            for name in ("src", "href"):
                value = attrs.get(name) or ""
                assert not re.match(r"^(https?:)?//|^javascript:", value), (page, tag, value)


def test_every_file_the_manifest_and_pages_name_exists() -> None:
    named = [MANIFEST["action"]["default_popup"], MANIFEST["options_ui"]["page"]]
    assert sorted(named) == sorted(PAGES)
    for page in PAGES:
        for tag, attrs in parse_page(page).tags:
            ref = {"script": attrs.get("src"), "link": attrs.get("href")}.get(tag)
            if ref:
                named.append(ref)
    for script in extension_scripts():
        for ref in IMPORT.findall(script.read_text(encoding="utf-8")):
            assert ref.startswith("./"), f"{script.name} imports {ref!r}: only relative files"
            named.append(str((script.parent / ref).relative_to(EXTENSION)))
    missing = [ref for ref in named if not (EXTENSION / ref).is_file()]
    assert not missing, f"named but missing in extension/: {missing}"
    assert len(named) > 8


def test_no_youtube_key_or_google_api_in_the_extension() -> None:
    for path in EXTENSION.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"AIza[0-9A-Za-z_-]{20,}|googleapis\.com|[?&]key=", text), path


def test_the_analysis_fixture_is_an_analysis_result_as_the_service_sends_it() -> None:
    """The Node and browser tests draw the popup from this file: it cannot drift from the model."""
    fixture = json.loads((EXTENSION / "test" / "fixtures" / "analysis.json").read_text("utf-8"))
    result = AnalysisResult.model_validate(fixture)
    assert json.loads(result.as_json()) == fixture


VIDEO_URLS = json.loads(
    (EXTENSION / "test" / "fixtures" / "video_urls.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize(("text", "why"), VIDEO_URLS["accept"])
def test_server_parser_accepts_what_the_extension_accepts(text: str, why: str) -> None:
    """The table the Node tests hold lib/youtube.js to, against the service's parser."""
    assert parse_video_id(text) == "dQw4w9WgXcQ", why


@pytest.mark.parametrize(("text", "why"), VIDEO_URLS["reject"])
def test_server_parser_rejects_what_the_extension_rejects(text: str, why: str) -> None:
    with pytest.raises(InsightsError, match="is not a YouTube video link or id") as caught:
        parse_video_id(text)
    assert INSIGHTS_STATUS[caught.value.kind] == 422, why
