"""Aspects in the insights: matching, discovery, one batched pair call, the per-aspect figures,
the limits and the missing model, the CSV and the report."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from aspect_fakes import FakePairModel
from sentiment_pipeline.cli import app
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights import pipeline, shares
from sentiment_pipeline.insights.aspect_analysis import excerpt
from sentiment_pipeline.insights.aspect_report import mentions_csv
from sentiment_pipeline.insights.aspects import (
    AspectSpec,
    discover,
    find_mentions,
    parse_aspect,
)
from sentiment_pipeline.insights.charts import render_charts
from sentiment_pipeline.insights.comments import Comment, CommentBatch, InsightsError
from sentiment_pipeline.insights.report import render_html
from sentiment_pipeline.insights.result import AnalysisResult, ModelInfo
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import opening
from sentiment_pipeline.registry.lookup import NotRegistered
from serving_fakes import FakeModel
from tiny_sklearn import save_tiny_model

TINY = ModelInfo(name="tiny", version=None, kind="sklearn", backend="sklearn")
AUDIO = AspectSpec(name="audio", terms=["sound", "mic"])
VIDEO = AspectSpec(name="video quality", terms=["video", "picture"])


def analyse(
    texts: list[str] | list[Comment],
    aspects: list[AspectSpec],
    discover_aspects: int = 0,
    model: FakePairModel | None = None,
    **config: object,
) -> AnalysisResult:
    comments = [c if isinstance(c, Comment) else Comment(text=c, id=str(i + 1))
                for i, c in enumerate(texts)]
    batch = CommentBatch(comments=comments, source={"kind": "json"})
    return pipeline.analyze_batch(
        batch, FakeModel(), TINY, InsightsConfig(language=None, **config), aspects=aspects,
        discover_aspects=discover_aspects,
        aspect_model=FakePairModel() if model is None else model,
    )


def by_name(result: AnalysisResult) -> dict:
    return {a.name: a for a in result.aspects}


# --- the aspects asked for --------------------------------------------------------------------


def test_the_cli_form_gives_the_name_and_its_synonyms():
    assert parse_aspect("audio") == AspectSpec(name="audio", terms=[])
    spec = parse_aspect("video quality= video, picture ,")
    assert spec == VIDEO and spec.all_terms == ["video quality", "video", "picture"]
    assert AspectSpec(name="Audio", terms=["audio ", "SOUND"]).all_terms == ["Audio", "SOUND"]
    assert find_mentions(["c++ and c+"], [AspectSpec(name="c++")])[0].term == "c++"


@pytest.mark.parametrize("text", ["", "=sound", "   ", "audio=" + "x" * 61])
def test_a_malformed_aspect_is_refused_with_the_accepted_form(text):
    with pytest.raises(InsightsError, match="is not an aspect: give a name") as caught:
        parse_aspect(text)
    assert caught.value.kind == "bad_request"


def test_terms_match_whole_words_case_insensitively_and_multi_word_terms_across_spaces():
    texts = [
        "The SOUNDTRACK is great",  # no word 'sound'
        "the Sound was off",
        "loved the video   quality",  # multi-word with extra spaces
        "sound-check, then sound again",  # 'sound' before a hyphen is a word; once per comment
        "microphones everywhere",
    ]
    found = find_mentions(texts, [AUDIO, VIDEO])
    assert [(m.comment, m.aspect, m.term) for m in found] == [
        (1, 0, "Sound"), (2, 1, "video   quality"), (3, 0, "sound"),
    ]
    assert texts[1][found[0].start:found[0].end] == "Sound"


def test_synonyms_aggregate_under_the_name_and_a_comment_counts_once():
    result = analyse(
        ["the sound is awful", "mic was awful, the audio awful too", "great audio", "no aspect"],
        [AUDIO],
    )
    audio = by_name(result)["audio"]
    assert audio.terms == ["audio", "sound", "mic"]
    assert audio.count == 3 and audio.share == pytest.approx(3 / 4)
    assert [m.term for m in audio.mentions] == ["sound", "mic", "audio"]
    assert {r.label: r.count for r in audio.breakdown} == {
        "negative": 2, "neutral": 0, "positive": 1,
    }
    assert not audio.discovered


def test_every_pair_goes_to_the_model_in_one_call_with_the_term_as_written():
    model = FakePairModel()
    texts = [f"comment {i}: the Sound is awful but the VIDEO is great" for i in range(40)]
    result = analyse(texts, [AUDIO, VIDEO], model=model)
    assert len(model.calls) == 1 and len(model.calls[0]) == 80
    assert model.calls[0][:2] == [(texts[0], "Sound"), (texts[0], "VIDEO")]
    aspects = by_name(result)
    assert aspects["audio"].net.value == -1.0 and aspects["video quality"].net.value == 1.0


def test_no_pair_call_when_nothing_is_mentioned_and_no_aspects_means_no_model_needed():
    model = FakePairModel()
    result = analyse(["nothing here"], [AUDIO], model=model)
    assert model.calls == [] and by_name(result)["audio"].count == 0
    assert by_name(result)["audio"].net.ci_low == -1.0
    plain = analyse(["nothing here"], [], model=None)
    assert plain.aspects == [] and plain.discovered_aspects == []


# --- figures -----------------------------------------------------------------------------------


def test_breakdown_intervals_net_sentiment_and_like_weights():
    texts = [Comment(text="great sound", likes=3), Comment(text="great sound"),
             Comment(text="awful sound"), Comment(text="the sound")]
    audio = by_name(analyse(texts, [AUDIO]))["audio"]
    rows = {r.label: r for r in audio.breakdown}
    assert (rows["positive"].ci_low, rows["positive"].ci_high) == pytest.approx(
        shares.wilson_interval(2, 4))
    weighted = {r.label: r.share for r in audio.weighted_breakdown}
    assert weighted["positive"] == pytest.approx(5 / 7)
    value, low, high = shares.net_interval(2, 1, 4)
    assert (audio.net.value, audio.net.ci_low, audio.net.ci_high) == pytest.approx(
        (0.25, low, high))
    assert -1 <= low < 0.25 < high <= 1


def test_net_interval_matches_the_wald_width_for_a_large_even_sample():
    value, low, high = shares.net_interval(500, 500, 1000)
    wald = 1.959964 * (1 / 1000) ** 0.5  # var = (p + q - (p - q)^2) / n = 1 / n
    assert value == 0 and low == pytest.approx(-wald, rel=0.02) and high == pytest.approx(wald,
                                                                                          rel=0.02)
    assert shares.net_interval(0, 0, 0) == (0.0, -1.0, 1.0)
    # all positive: each share's Wilson half-width (1 - 10 / 13.84) combined, uncorrelated at q = 0
    assert shares.net_interval(10, 0, 10) == pytest.approx(
        (1.0, 1 - math.sqrt(2) * (1 - 10 / 13.841459), 1.0))


def test_the_trend_of_an_aspect_uses_the_mentioning_comments_times():
    day = datetime(2024, 5, 1, 12, tzinfo=UTC)
    texts = [Comment(text="awful sound", published_at=day),
             Comment(text="great sound", published_at=day.replace(day=5)),
             Comment(text="no aspect", published_at=day.replace(day=20))]
    audio = by_name(analyse(texts, [AUDIO]))["audio"]
    assert audio.trend.period == "day"
    assert [b.count for b in audio.trend.buckets] == [1, 0, 0, 0, 1]
    assert [b.counts["positive"] for b in audio.trend.buckets] == [0, 0, 0, 0, 1]


def test_examples_per_class_mark_the_aspect_by_offsets_in_their_text():
    long = "x " * 3000 + "the Mic is awful " + "y " * 3000
    texts = [Comment(text="great <b>sound</b>", likes=1), Comment(text=long, likes=9)]
    audio = by_name(analyse(texts, [AUDIO], max_text_chars=100))["audio"]
    [positive] = audio.examples["positive"]
    assert positive.text[positive.start:positive.end] == "sound"
    [negative] = audio.examples["negative"]
    assert len(negative.text) <= 102 and negative.text.startswith("…")
    assert negative.text.endswith("…") and negative.text[negative.start:negative.end] == "Mic"
    assert audio.examples["neutral"] == []


@pytest.mark.parametrize("start, end, width", [(0, 3, 5), (7, 10, 5), (4, 6, 4), (2, 9, 4)])
def test_an_excerpt_keeps_the_whole_span(start, end, width):
    text = "abcdefghij"
    cut, s, e = excerpt(text, start, end, width)
    assert cut[s:e] == text[start:end]
    assert cut.strip("…") in text


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_suggests_content_words_and_phrases_without_stop_words_handles_urls_numbers():
    texts = [
        "the battery life is short @apple https://apple.com/x 2024",
        "battery life again, and the screen",
        "my battery life! screen 2024 @apple",
        "the the the and and https://apple.com/x",
    ]
    found = dict(discover(texts, [], 10))
    assert found == {"battery": 3, "battery life": 3, "life": 3, "screen": 2}
    assert dict(discover(texts, [AspectSpec(name="battery")], 10)) == {"life": 3, "screen": 2}
    assert discover(texts, [], 1) == [("battery", 3)]


def test_discovered_aspects_are_suggested_with_counts_and_analysed_like_the_asked_ones():
    texts = ["awful battery, great screen", "battery awful", "screen great", "the sound",
             "the battery and the screen"]
    result = analyse(texts, [AUDIO], discover_aspects=2, terms_min_count=2)
    assert [(d.term, d.count) for d in result.discovered_aspects] == [
        ("battery", 3), ("screen", 3),
    ]
    aspects = by_name(result)
    assert [a.discovered for a in result.aspects] == [False, True, True]
    assert aspects["battery"].net.value == pytest.approx(-2 / 3)
    assert aspects["screen"].net.value == pytest.approx(2 / 3)


# --- limits and the model ----------------------------------------------------------------------


def test_too_many_aspects_mentions_or_discoveries_are_too_large():
    with pytest.raises(InsightsError, match="3 aspects asked; at most 2") as caught:
        analyse(["x"], [AUDIO, VIDEO, AspectSpec(name="host")], max_aspects=2)
    assert caught.value.kind == "too_large" and caught.value.setting == "insights.max_aspects"
    with pytest.raises(InsightsError, match="mentioned 3 times; .* at most 2 mentions") as caught:
        analyse(["sound", "sound", "sound"], [AUDIO], max_aspect_mentions=2)
    assert caught.value.kind == "too_large"
    with pytest.raises(InsightsError, match="discover_aspects must be between 0 and 5") as caught:
        analyse(["x"], [], discover_aspects=6, max_discover_aspects=5)
    assert caught.value.kind == "too_large"


def test_aspects_without_a_pair_model_are_refused_with_how_to_get_one():
    for model, says in [
        (None, "no aspect model is loaded; train one"),
        (FakePairModel(input="text"), "takes single texts, not \\(text, aspect\\) pairs"),
        (FakePairModel(labels=["bad", "good"]), "without \\['negative', 'positive'\\]"),
    ]:
        with pytest.raises(InsightsError, match=says) as caught:
            pipeline.analyze_batch(
                CommentBatch([Comment(text="sound")], {"kind": "json"}), FakeModel(), TINY,
                InsightsConfig(language=None), aspects=[AUDIO], aspect_model=model,
            )
        assert caught.value.kind == "no_aspect_model"


# --- outputs -----------------------------------------------------------------------------------


def test_the_result_is_strict_json_and_notes_the_aspect_model():
    result = analyse(["great sound", "awful video"], [AUDIO, VIDEO], discover_aspects=1,
                     terms_min_count=1)
    sent = json.loads(result.as_json())
    assert [a["name"] for a in sent["aspects"]][:2] == ["audio", "video quality"]
    assert sent["aspects"][0]["examples"]["positive"][0]["start"] == 6
    assert any("aspect model fake-aspects" in note for note in sent["notes"])
    assert AnalysisResult.model_validate(sent) == result


def test_the_mentions_csv_has_a_row_per_comment_and_aspect_and_is_formula_safe():
    texts = ["=HYPERLINK(1) sound and video", "@cmd awful mic", "nothing"]
    result = analyse(texts, [AUDIO, VIDEO])
    rows = list(csv.reader(io.StringIO(mentions_csv(result))))
    assert rows[0] == ["index", "id", "aspect", "term", "label", "confidence", "text"]
    assert [(r[0], r[2], r[3], r[4]) for r in rows[1:]] == [
        ("0", "audio", "sound", "neutral"), ("0", "video quality", "video", "neutral"),
        ("1", "audio", "mic", "negative"),
    ]
    assert rows[1][6] == "'=HYPERLINK(1) sound and video" and rows[3][6] == "'@cmd awful mic"


def test_the_report_escapes_comments_and_marks_the_aspect_from_its_offsets():
    xss = "<script>alert(1)</script> great sound <img src=x>"
    result = analyse([xss, "awful <b>audio</b>"], [AspectSpec(name="audio", terms=["sound"])])
    html = render_html(result)
    assert "<script>alert" not in html and "<img src=x>" not in html
    assert ("&lt;script&gt;alert(1)&lt;/script&gt; great <mark>sound</mark> &lt;img src=x&gt;"
            in html)
    assert "awful &lt;b&gt;<mark>audio</mark>&lt;/b&gt;" in html
    assert re.search(r"<h2>Aspects</h2>", html)


def test_the_aspects_chart_ranks_by_net_sentiment_with_whiskers_and_only_with_aspects():
    texts = ["great sound", "great sound", "awful video", "the picture", "awful mic"]
    result = analyse(texts, [AUDIO, VIDEO, AspectSpec(name="host")])
    svg = render_charts(result).aspects
    assert svg is not None and svg.lstrip().startswith("<?xml")
    assert svg.index("audio") < svg.index("host") < svg.index("video quality")
    assert "net sentiment: positive share minus negative share" in svg
    plain = analyse(texts, [])
    assert render_charts(plain).aspects is None
    assert set(render_charts(plain).model_dump()) == {"breakdown", "trend", "terms"}


def test_the_summary_and_the_files_say_the_aspects(tmp_path):
    result = analyse(["great sound", "awful video"], [AUDIO, VIDEO], discover_aspects=1,
                     terms_min_count=1)
    text = pipeline.summary(result)
    assert "aspect audio: 1 comments (50.0 %), net +100 %" in text
    assert "suggested aspects: awful (1)" in text
    written = pipeline.write_outputs(result, aspects_csv=tmp_path / "m.csv",
                                     html=tmp_path / "r.html")
    assert written == [tmp_path / "m.csv", tmp_path / "r.html"]
    assert (tmp_path / "m.csv").read_text().startswith("index,id,aspect,term")
    html = (tmp_path / "r.html").read_text()
    assert "<h2>Aspects</h2>" in html and 'alt="Aspects by net sentiment chart"' in html


# --- the command -------------------------------------------------------------------------------

MODEL = ["--model", "models/baseline/logistic_baseline"]
runner = CliRunner()


@pytest.fixture
def baseline(project):
    save_tiny_model(project.baseline_model)
    return project.baseline_model


@pytest.fixture
def comments_file(tmp_path):
    path = tmp_path / "comments.csv"
    texts = ["awful delayed flight, the crew was great", "great friendly crew", "=1+1 the gate",
             "the gate agent was awful", "delayed again", "delayed flight"]
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    return path


def test_analyze_reads_aspects_with_the_aspect_model_and_writes_the_mentions(
    baseline, comments_file, tmp_path, monkeypatch
):
    model = FakePairModel()
    opened = []

    def open_aspect_model(spec, *, model_name, paths, trust=None):
        opened.append((spec, model_name))
        return model

    monkeypatch.setattr(pipeline, "open_aspect_model", open_aspect_model)
    out = tmp_path / "m.csv"
    result = runner.invoke(app, [
        "analyze", *MODEL, "--input", str(comments_file), "--aspect", "staff=crew,agent",
        "--aspect", "gate", "--discover", "1", "--aspects-csv", str(out),
        "--json", str(tmp_path / "r.json"),
    ])
    assert result.exit_code == 0, result.output
    assert opened == [(None, "aspect-classifier")] and len(model.calls) == 1
    assert "aspect staff: 3 comments" in result.output
    assert "suggested aspects: delayed (3)" in result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert [a["name"] for a in data["aspects"]] == ["staff", "gate", "delayed"]
    rows = list(csv.DictReader(out.open()))
    assert [(r["index"], r["aspect"], r["label"]) for r in rows][:3] == [
        ("0", "staff", "positive"), ("0", "delayed", "negative"), ("1", "staff", "positive"),
    ]
    assert rows[3]["text"] == "'=1+1 the gate"


def test_analyze_with_a_text_model_as_the_aspect_model_says_it_takes_no_pairs(
    baseline, comments_file
):
    result = runner.invoke(app, ["analyze", *MODEL, "--input", str(comments_file), "--aspect",
                                 "gate", "--aspect-model", str(baseline)])
    assert result.exit_code == 1
    assert "takes single texts (its manifest's input is 'text')" in result.output


def test_analyze_refuses_a_malformed_aspect(baseline, comments_file):
    result = runner.invoke(app, ["analyze", *MODEL, "--input", str(comments_file),
                                 "--aspect", "=crew"])
    assert result.exit_code == 1 and "--aspect '=crew' is not an aspect" in result.output


def test_no_registered_aspect_model_means_none(monkeypatch, tmp_path):
    def not_registered(spec, **_):
        raise NotRegistered(f"{spec} is not registered")

    monkeypatch.setattr(opening, "open_model", not_registered)
    paths = ProjectPaths.at(tmp_path)
    assert pipeline.open_aspect_model(None, model_name="a", paths=paths) is None
    with pytest.raises(NotRegistered, match="models:/b@champion"):
        pipeline.open_aspect_model("models:/b@champion", model_name="a", paths=paths)
