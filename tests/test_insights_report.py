"""Charts, the HTML report, the per-comment CSV and `sentiment-pipeline analyze`."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from sentiment_pipeline.cli import app
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights import analysis, charts, markup, pipeline, report
from sentiment_pipeline.insights.comments import Comment, CommentBatch
from sentiment_pipeline.insights.language import UNCHECKED
from sentiment_pipeline.insights.result import (
    AnalysisResult,
    ModelInfo,
    Term,
    Trend,
    TrendBucket,
)
from sentiment_pipeline.settings import get_settings
from tiny_sklearn import save_tiny_model

runner = CliRunner()
XSS = "<img src=x onerror=alert(1)>"
DOLLAR_LABELS = ["neg $x$", "50$", "pos $x^$"]  # "$x^$" is a mathtext syntax error
FETCHING = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def make_result(labels: list[str] = DOLLAR_LABELS) -> AnalysisResult:
    texts = [XSS, "costs 50$ and $x$ more", "=HYPERLINK(\"http://x\")", "great $x^$ crew",
             "+1 agree", "-lol", "@mention me", "plain words here"]
    start = datetime(2015, 2, 16, tzinfo=UTC)
    comments = [
        Comment(text=t, id=str(i), author="=cmd" if i == 0 else f"user{i}",
                published_at=start + timedelta(days=i), likes=i)
        for i, t in enumerate(texts)
    ]
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]] * 2)
    result = analysis.analyze(
        CommentBatch(comments=comments, source={"kind": "file", "file": "x<b>.csv", "rows": 8}),
        proba, labels, ModelInfo(name="tiny", version="3", kind="sklearn", backend="sklearn"),
        InsightsConfig(terms_min_count=1), [UNCHECKED] * len(comments), 0.25,
    )
    terms = {**result.terms, labels[0]: [
        Term(term="$x$", z=2.5, count=3), Term(term="50$", z=1.5, count=3),
        Term(term="$x^$", z=1.0, count=3), Term(term=XSS, z=0.5, count=3),
    ]}
    return result.model_copy(update={"terms": terms})


# --- charts -----------------------------------------------------------------------------------


def test_charts_render_dollar_signs_as_text_never_as_mathtext():
    rendered = charts.render_charts(make_result()).model_dump()
    assert set(rendered) == {"breakdown", "trend", "terms"}
    for svg in rendered.values():
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<script" not in svg.lower() and "foreignobject" not in svg.lower()
    # matplotlib leaves each text in a comment beside its glyphs: the labels went in as written
    assert "<!-- $x^$ -->" in rendered["terms"]
    assert "<!-- 50$ -->" in rendered["terms"]
    assert "<!-- neg $x$ -->" in rendered["trend"]
    assert XSS not in rendered["terms"]  # markup in text is escaped by matplotlib


def test_trend_chart_without_dates_says_so():
    result = make_result().model_copy(update={"trend": Trend(period=None, buckets=[])})
    assert "<!-- No dated comments: no trend -->" in charts.render_charts(result).trend


def one_class_day(day: int, count: int, label: str) -> TrendBucket:
    labels = ["negative", "neutral", "positive"]
    return TrendBucket(start=f"2024-05-0{day}T00:00:00Z", count=count,
                       counts={x: count if x == label else 0 for x in labels},
                       shares={x: 1.0 if x == label else 0.0 for x in labels})


def test_a_period_of_one_comment_is_drawn_faint_with_its_count():
    # Finding 7 of issue 17: a day with one comment was a full-height bar like the busy days.
    labels = ["negative", "neutral", "positive"]
    trend = Trend(period="day", buckets=[one_class_day(1, 100, "negative"),
                                         one_class_day(2, 1, "positive"),
                                         one_class_day(3, 100, "neutral")])
    svg = charts.trend_chart(trend, labels, charts.label_colours(labels))

    def opacity(period: int, label: int) -> float:
        group = re.search(rf'<g id="share-{period}-{label}">.*?style="([^"]*)"', svg, re.S)
        found = re.search(r"opacity: ([0-9.]+)", group.group(1))
        return float(found.group(1)) if found else 1.0

    assert opacity(0, 0) == 1.0 and opacity(2, 1) == 1.0
    assert opacity(1, 2) == pytest.approx(0.2 + 0.8 * 0.1, abs=1e-3)  # sqrt(1 / 100)
    assert "<!-- 1 -->" in svg and "<!-- 100 -->" in svg  # each period's count above it
    assert charts.period_opacity([0, 4, 16]) == pytest.approx([0.2, 0.6, 1.0])


def test_charts_render_from_several_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    result = make_result()
    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda _: charts.render_charts(result).model_dump(), range(4)))
    clip_ids = re.compile(r"\b[pm][0-9a-f]{10}\b")  # ids of clip paths, markers: random
    same = [{name: clip_ids.sub("p", svg) for name, svg in out.items()} for out in outputs]
    assert all(out == same[0] for out in same)


# --- HTML -------------------------------------------------------------------------------------


def test_html_report_is_self_contained_and_escapes_comment_text():
    result = make_result()
    rendered = charts.render_charts(result)
    page = report.render_html(result, rendered)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert not FETCHING.search(page), FETCHING.search(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert XSS not in page
    assert "x&lt;b&gt;.csv" in page  # the file name too
    assert "default-src 'none'" in page  # a page policy forbids any fetch or script
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(images) == 3
    assert base64.b64decode(images[0]).decode() == rendered.breakdown


def test_html_report_shows_the_figures_of_the_result():
    result = make_result(["negative", "neutral", "positive"])
    page = report.render_html(result, None)
    for row in result.breakdown:
        low, high = markup.percent(row.ci_low), markup.percent(row.ci_high)
        assert f"<td class=num>{low} to {high}</td>" in page
    assert "model tiny (version 3)" in page
    assert "a sklearn model run on the sklearn backend" in page
    assert "Comments per day, with each sentiment's share (times in UTC" in page
    assert "<td>23 Feb 2015</td>" in page
    assert "The like-weighted breakdown counts each comment as 1 + its likes." in page


def test_html_report_speaks_to_a_creator_with_the_technical_terms_in_footnotes():
    # Finding 7 of issue 17: "kind sklearn, backend sklearn", "log-odds z-score", "Wilson",
    # raw ISO times and "1 likes" in the body of the report.
    page = report.render_html(make_result(["negative", "neutral", "positive"]), None)
    body, foot = page.split("<h2>About these figures</h2>")
    for term in ("kind sklearn", "backend", "z-score", "log-odds", "Wilson", "Dirichlet"):
        assert term not in body, term
    for term in ("Wilson score interval", "log-odds ratio", "sklearn backend", "UTC"):
        assert term in foot, term
    assert 'likely range<sup><a href="#note-1">1</a></sup>' in body
    assert '<li id="note-1">' in foot
    assert "1 like ·" in body and "1 likes" not in body and "2 likes" in body
    assert "17 Feb 2015, 00:00 UTC" in body and "2015-02-17T" not in body


def test_report_links_each_youtube_comment_and_nothing_else():
    video = {"id": "dQw4w9WgXcQ", "title": "A video", "channel": "c", "comment_count": 1,
             "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}
    result = analysis.analyze(
        CommentBatch(comments=[Comment(text="so good", id="UgxA-1", likes=1)],
                     source={"kind": "youtube", "video": video}),
        np.array([[0.1, 0.1, 0.8]]), ["negative", "neutral", "positive"],
        ModelInfo(name="tiny", version=None, kind="sklearn", backend="sklearn"),
        InsightsConfig(), [UNCHECKED], 0.1,
    )
    page = report.render_html(result, None)
    links = re.findall(r'<a href="([^"#][^"]*)"', page)
    assert links and set(links) == {"https://www.youtube.com/watch?v=dQw4w9WgXcQ&amp;lc=UgxA-1"}
    hostile = result.comments[0].model_copy(update={"url": "javascript:alert(1)"})
    assert "javascript:" not in report.comment_block(hostile, result.labels)


# --- CSV --------------------------------------------------------------------------------------


def test_a_carriage_return_in_a_comment_stays_inside_its_csv_row():
    # Python's csv writer before 3.11.9 quotes only its line terminator's characters: with
    # "\n" a bare "\r" went out unquoted and a spreadsheet split the comment in two rows.
    result = make_result(["negative", "neutral", "positive"])
    cut = result.model_copy(update={"comments": [
        result.comments[7].model_copy(update={"text": "first line\rsecond line"})
    ]})
    text = report.comments_csv(cut)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["text"] for row in rows] == ["first line\rsecond line"]
    assert len(text.splitlines()) >= 2 and '"first line\rsecond line"' in text


def test_csv_guards_cells_a_spreadsheet_would_run_as_formulas():
    result = make_result(["negative", "neutral", "positive"])
    rows = list(csv.DictReader(io.StringIO(report.comments_csv(result))))
    assert len(rows) == len(result.comments)
    texts = [row["text"] for row in rows]
    assert texts[2] == "'=HYPERLINK(\"http://x\")"
    assert texts[4] == "'+1 agree" and texts[5] == "'-lol" and texts[6] == "'@mention me"
    assert texts[0] == XSS and texts[7] == "plain words here"
    assert rows[0]["author"] == "'=cmd"
    assert list(rows[0])[-5:] == [
        "p_negative", "p_neutral", "p_positive", "language", "other_language"
    ]
    assert float(rows[0]["p_negative"]) == pytest.approx(0.7)


def test_formula_guard_leaves_numbers_and_other_text_alone():
    assert markup.formula_safe(-3) == -3
    assert markup.formula_safe("a=b") == "a=b"
    assert markup.formula_safe("\tcmd") == "'\tcmd"


# --- the pipeline the server shares -------------------------------------------------------------


def test_finish_checks_languages_for_real_and_renders_charts():
    spanish = "El vuelo llegó con tres horas de retraso y nadie nos ayudó en el aeropuerto"
    english = "The flight was three hours late and nobody at the airport helped us at all"
    batch = CommentBatch(comments=[Comment(text=spanish), Comment(text=english)],
                         source={"kind": "json"})
    result = pipeline.finish(
        batch, np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]]), ["negative", "neutral", "positive"],
        ModelInfo(name="tiny", version=None, kind="sklearn", backend="sklearn"),
        InsightsConfig(), charts=True,
    )
    assert [r.language for r in result.comments] == ["es", "en"]
    assert [r.other_language for r in result.comments] == [True, False]
    assert result.counts.analysed == 1
    assert [r.count for r in result.breakdown] == [0, 1, 0]
    assert result.notes[0].startswith("50 % of comments (1 of 2) are not in 'en'")
    assert result.charts is not None
    assert set(result.charts.model_dump()) == {"breakdown", "trend", "terms"}
    assert result.elapsed_s >= 0


# --- the CLI ----------------------------------------------------------------------------------

MODEL = ["--model", "models/baseline/logistic_baseline"]


@pytest.fixture
def baseline(project):
    save_tiny_model(project.baseline_model)
    return project.baseline_model


@pytest.fixture
def comments_csv(tmp_path):
    path = tmp_path / "comments.csv"
    pd.DataFrame(
        {
            "body": ["awful delayed flight", "great friendly crew", XSS, "=1+1 the gate",
                     "lovely crew great", "delayed again awful"],
            "created": ["24-02-2015 11.35", "24-02-2015 12.10", "25-02-2015 09.00",
                        "not a time", "26-02-2015 18.45", "26-02-2015 19.00"],
            "likes": [3, 10, 0, 1, 2, 0],
            "who": ["ann", "bob", "eve", "dan", "cy", "al"],
        }
    ).to_csv(path, index=False)
    return path


def test_analyze_a_csv_writes_html_json_and_csv(baseline, comments_csv, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["analyze", *MODEL, "--input", str(comments_csv), "--text-column", "body",
         "--time-column", "created", "--time-format", "%d-%m-%Y %H.%M", "--likes-column", "likes",
         "--author-column", "who", "--html", str(out / "r.html"), "--json", str(out / "r.json"),
         "--csv", str(out / "r.csv")],
    )
    assert result.exit_code == 0, result.output
    assert "6 comments, 6 analysed" in result.output
    assert f"wrote {out / 'r.html'}" in result.output
    data = json.loads((out / "r.json").read_text())
    assert "charts" not in data
    assert data["model"]["name"] == "logistic_baseline" or data["model"]["kind"] == "sklearn"
    assert data["labels"] == ["negative", "neutral", "positive"]
    assert data["counts"]["comments"] == 6 and data["counts"]["unparsed_times"] == 1
    assert data["trend"]["period"] == "day"
    assert [b["start"][:10] for b in data["trend"]["buckets"]] == [
        "2015-02-24", "2015-02-25", "2015-02-26"
    ]
    assert [b["count"] for b in data["trend"]["buckets"]] == [2, 1, 2]
    assert data["comments"][0]["label"] == "negative"
    assert data["comments"][1]["likes"] == 10 and data["comments"][1]["author"] == "bob"
    page = (out / "r.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and XSS not in page
    assert page.count("data:image/svg+xml;base64,") == 3
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert [r["text"] for r in rows][3] == "'=1+1 the gate"
    assert sorted(p.name for p in out.iterdir()) == ["r.csv", "r.html", "r.json"]


def test_analyze_explains_itself():
    result = runner.invoke(app, ["analyze", "--help"])
    assert result.exit_code == 0
    for option in ("--youtube", "--input", "--model", "--time-format", "--max-comments",
                   "--html", "--json", "--csv"):
        assert option in result.output


def test_analyze_a_missing_column_is_a_clean_error(baseline, comments_csv, tmp_path):
    result = runner.invoke(
        app, ["analyze", *MODEL, "--input", str(comments_csv), "--json", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "'text'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    "args",
    [[], ["--input", "a.csv", "--youtube", "dQw4w9WgXcQ"], ["--input", "a.csv",
                                                           "--max-comments", "5"]],
)
def test_analyze_needs_exactly_one_source(baseline, args):
    result = runner.invoke(app, ["analyze", *MODEL, *args])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "--youtube" in result.output


def test_analyze_youtube_without_a_key_says_how_to_set_one(baseline, monkeypatch):
    for name in ("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", "YOUTUBE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    result = runner.invoke(app, ["analyze", *MODEL, "--youtube", "https://youtu.be/dQw4w9WgXcQ"])
    assert result.exit_code == 1
    assert "YouTube Data API key" in result.output and "YOUTUBE_API_KEY" in result.output
    assert "Traceback" not in result.output


def test_analyze_a_bad_video_url_names_it(baseline, monkeypatch):
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", "k")
    get_settings.cache_clear()
    result = runner.invoke(app, ["analyze", *MODEL, "--youtube", "https://example.com/x"])
    assert result.exit_code == 1
    assert "https://example.com/x" in result.output and "Traceback" not in result.output


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA.is_file(), reason=f"no airline tweets at {SHARED_DATA}")
def test_airline_tweets_trend_shows_the_real_days(baseline, tmp_path):
    sample = tmp_path / "airline_sample.csv"
    pd.read_csv(SHARED_DATA).sample(2000, random_state=0).to_csv(sample, index=False)
    out = tmp_path / "airline.json"
    result = runner.invoke(
        app,
        ["analyze", *MODEL, "--input", str(sample), "--time-column", "tweet_created",
         "--time-format", "%d-%m-%Y %H.%M", "--likes-column", "retweet_count",
         "--author-column", "name", "--json", str(out), "--html", str(tmp_path / "r.html")],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["counts"]["comments"] == 2000
    assert data["counts"]["unparsed_times"] == 0
    trend = data["trend"]
    assert trend["period"] == "day"
    days = [b["start"] for b in trend["buckets"]]
    assert all(day.startswith("2015-02-") and day.endswith("T00:00:00Z") for day in days)
    assert 7 <= len(days) <= 10  # the tweets span about a week of February 2015
    assert sum(b["count"] for b in trend["buckets"]) == data["counts"]["analysed"]
    assert data["counts"]["analysed"] >= 1900  # a few non-English tweets at most


def test_figures_and_times_in_a_readers_words():
    from sentiment_pipeline.insights.wording import plural, readable_time

    assert [plural(n, "like") for n in (0, 1, 2, 1200)] == ["0 likes", "1 like", "2 likes",
                                                            "1,200 likes"]
    assert plural(3, "reply", "replies") == "3 replies"
    assert readable_time("2026-12-07T14:05:00Z") == "7 Dec 2026, 14:05 UTC"
    paris = datetime(2026, 12, 7, 15, 5, tzinfo=timezone(timedelta(hours=1)))
    assert readable_time(paris) == "7 Dec 2026, 14:05 UTC"
    assert report.period_start("2015-02-23T00:00:00Z", "week") == "week of 23 Feb 2015"
    assert report.period_start("2015-02-24T11:00:00Z", "hour") == "24 Feb 2015, 11:00"
    assert report.period_start("2015-02-01T00:00:00Z", "month") == "Feb 2015"
