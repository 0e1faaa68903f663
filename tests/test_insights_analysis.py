"""The analysis maths on hand-made inputs with answers worked out by hand."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights import analysis, shares, terms, trend
from sentiment_pipeline.insights.comments import Comment, CommentBatch
from sentiment_pipeline.insights.files import read_comments
from sentiment_pipeline.insights.language import UNCHECKED, Guess
from sentiment_pipeline.insights.result import AnalysisResult, ModelInfo

LABELS = ["negative", "neutral", "positive"]
ONE_HOT = {0: [0.8, 0.1, 0.1], 1: [0.1, 0.8, 0.1], 2: [0.1, 0.1, 0.8]}
TINY = ModelInfo(name="tiny", version=None, kind="sklearn", backend="sklearn")


def as_sent(result: AnalysisResult) -> dict:
    """The result as its clients read it: the JSON of /v1/analyze."""
    return json.loads(result.as_json())


def run(
    comments: list[Comment],
    proba: list[list[float]],
    languages: list[Guess] | None = None,
    now: datetime | None = None,
    **config: object,
) -> dict:
    batch = CommentBatch(comments=comments, source={"kind": "json"})
    return as_sent(analysis.analyze(
        batch,
        np.array(proba, dtype=float).reshape(-1, 3),
        LABELS,
        TINY,
        InsightsConfig(**config),
        languages if languages is not None else [UNCHECKED] * len(comments),
        0.5,
        now=now,
    ))


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- breakdown --------------------------------------------------------------------------------


def test_wilson_interval_of_9_in_15_matches_the_hand_computation():
    # p = .6, z^2/n = 3.841459/15; centre = (.6 + .128049)/1.256097 = .579612;
    # half = 1.959964/1.256097 * sqrt(.24/15 + 3.841459/900) = .222144
    low, high = shares.wilson_interval(9, 15)
    assert low == pytest.approx(0.357468, abs=1e-6)
    assert high == pytest.approx(0.801756, abs=1e-6)


def test_wilson_interval_at_zero_and_all_stays_inside_0_1():
    # 0/n: (0, z^2/(n + z^2)); n/n: (n/(n + z^2), 1)
    assert shares.wilson_interval(0, 10) == pytest.approx((0.0, 3.841459 / 13.841459))
    assert shares.wilson_interval(10, 10) == pytest.approx((10 / 13.841459, 1.0))
    low, high = shares.wilson_interval(0, 10)
    assert low == 0.0 and high < 1
    assert shares.wilson_interval(0, 0) == (0.0, 1.0)


def test_breakdown_counts_shares_and_intervals():
    classes = [0] * 9 + [1] * 2 + [2] * 4
    result = run([Comment(text=f"c{i}") for i in classes], [ONE_HOT[k] for k in classes])
    rows = {r["label"]: r for r in result["breakdown"]}
    assert [r["label"] for r in result["breakdown"]] == LABELS
    assert rows["negative"]["count"] == 9 and rows["negative"]["share"] == pytest.approx(0.6)
    assert rows["neutral"]["share"] == pytest.approx(2 / 15)
    assert rows["positive"]["share"] == pytest.approx(4 / 15)
    assert rows["negative"]["ci_low"] == pytest.approx(0.357468, abs=1e-6)
    assert rows["negative"]["ci_high"] == pytest.approx(0.801756, abs=1e-6)
    assert sum(r["share"] for r in result["breakdown"]) == pytest.approx(1)


def test_weighted_breakdown_weighs_each_comment_one_plus_its_likes():
    comments = [Comment(text="a", likes=0), Comment(text="b", likes=4), Comment(text="c", likes=1)]
    result = run(comments, [ONE_HOT[0], ONE_HOT[1], ONE_HOT[1]])
    weighted = {r["label"]: r for r in result["weighted_breakdown"]}
    assert weighted["negative"] == {"label": "negative", "weight": 1.0, "share": 1 / 8}
    assert weighted["neutral"]["weight"] == 7.0 and weighted["neutral"]["share"] == 7 / 8
    assert weighted["positive"]["share"] == 0.0
    assert any("1 + its likes" in note for note in result["notes"])


# --- trend ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "period"),
    [
        (timedelta(0), "hour"),
        (timedelta(days=2), "hour"),
        (timedelta(days=2, seconds=1), "day"),
        (timedelta(days=90), "day"),
        (timedelta(days=90, seconds=1), "week"),
        (timedelta(days=730), "week"),
        (timedelta(days=730, seconds=1), "month"),
    ],
)
def test_period_is_chosen_from_the_span_at_its_boundaries(span, period):
    assert trend.choose_period(span) == period
    first = at(2024, 1, 1, 0, 0)
    result = run(
        [Comment(text="a", published_at=first), Comment(text="b", published_at=first + span)],
        [ONE_HOT[0], ONE_HOT[2]],
    )
    assert result["trend"]["period"] == period


def test_hour_buckets_include_the_empty_hours_between_comments():
    times = [at(2024, 1, 1, 10, 15), at(2024, 1, 1, 10, 59), at(2024, 1, 1, 13, 0)]
    result = run([Comment(text="x", published_at=t) for t in times], [ONE_HOT[0], ONE_HOT[2],
                                                                      ONE_HOT[2]])
    buckets = result["trend"]["buckets"]
    assert [b["start"] for b in buckets] == [
        "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "2024-01-01T12:00:00Z",
        "2024-01-01T13:00:00Z",
    ]
    assert [b["count"] for b in buckets] == [2, 0, 0, 1]
    assert buckets[0]["counts"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert buckets[0]["shares"] == {"negative": 0.5, "neutral": 0.0, "positive": 0.5}
    assert buckets[1]["shares"] == {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
    assert buckets[3]["shares"]["positive"] == 1.0


def test_buckets_start_at_utc_midnight_monday_and_the_first_of_the_month():
    moment = datetime(2024, 1, 3, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # Thu 04:30 UTC
    assert trend.bucket_start(moment, "day") == at(2024, 1, 4)
    assert trend.bucket_start(moment, "week") == at(2024, 1, 1)  # Monday
    assert trend.bucket_start(moment, "month") == at(2024, 1, 1)
    assert trend.next_bucket(at(2023, 12, 1), "month") == at(2024, 1, 1)
    assert trend.next_bucket(at(2024, 1, 1), "week") == at(2024, 1, 8)


def test_month_buckets_run_across_a_year_end():
    times = [at(2022, 11, 20), at(2025, 2, 3)]
    result = run([Comment(text="x", published_at=t) for t in times], [ONE_HOT[0], ONE_HOT[1]])
    buckets = result["trend"]["buckets"]
    assert result["trend"]["period"] == "month"
    assert buckets[0]["start"] == "2022-11-01T00:00:00Z"
    assert buckets[2]["start"] == "2023-01-01T00:00:00Z"
    assert buckets[-1]["start"] == "2025-02-01T00:00:00Z"
    assert len(buckets) == 2 + 12 + 12 + 2
    assert sum(b["count"] for b in buckets) == 2


def test_undated_comments_stay_out_of_the_trend_and_are_counted():
    comments = [Comment(text="a", published_at=at(2024, 1, 1)), Comment(text="b"),
                Comment(text="c")]
    batch = CommentBatch(comments=comments, source={"kind": "file", "file": "c.csv", "rows": 3},
                         unparsed_times=1)
    result = as_sent(analysis.analyze(
        batch, np.array([ONE_HOT[0]] * 3), LABELS, TINY, InsightsConfig(), [(None, 0.0)] * 3, 0.0
    ))
    assert result["counts"]["with_time"] == 1
    assert result["counts"]["unparsed_times"] == 1
    assert result["counts"]["no_time"] == 1
    assert sum(b["count"] for b in result["trend"]["buckets"]) == 1
    assert any("1 timestamp could not be parsed" in note for note in result["notes"])


def test_no_dated_comment_means_no_trend():
    result = run([Comment(text="a")], [ONE_HOT[0]])
    assert result["trend"] == {"period": None, "buckets": []}


def test_a_count_column_taken_for_the_time_column_gives_a_note_not_a_1970_trend():
    # Finding 6 of issue 17: the likes column as the time column made one bucket at
    # 1970-01-01 (likes read as seconds since 1970) and said nothing.
    data = b"text,likes\n" + b"".join(b"comment %d,%d\n" % (i, i * 3) for i in range(12))
    batch = read_comments(data, filename="c.csv", time_column="likes", likes_column="likes")
    result = as_sent(analysis.analyze(
        batch, np.array([ONE_HOT[i % 3] for i in range(12)]), LABELS, TINY, InsightsConfig(),
        [UNCHECKED] * 12, 0.0,
    ))
    assert result["trend"] == {"period": None, "buckets": []}
    assert result["counts"]["with_time"] == 12 and result["counts"]["implausible_times"] == 12
    note = next(n for n in result["notes"] if "before 2005" in n)
    assert "12 of 12" in note and "1 Jan 1970" in note and "counts" in note
    assert "no trend" in note


def test_times_mostly_in_the_future_are_left_out_of_the_trend():
    now = at(2024, 6, 1)
    times = [at(2031, 1, d) for d in range(1, 6)] + [at(2024, 5, 30)]
    result = run([Comment(text="x", published_at=t) for t in times], [ONE_HOT[0]] * 6,
                 now=now)
    assert result["trend"] == {"period": None, "buckets": []}
    assert result["counts"]["implausible_times"] == 6  # the one plausible time is left too
    note = next(n for n in result["notes"] if "in the future" in n)
    assert "5 of 6" in note and "1 Jan 2031, 00:00 UTC" in note


def test_a_few_implausible_times_are_left_out_and_the_rest_make_the_trend():
    now = at(2024, 6, 1)
    good = [at(2024, 5, 1, h) for h in (9, 10, 12)]
    odd = [at(1999, 1, 1), now + timedelta(days=2)]
    result = run([Comment(text="x", published_at=t) for t in good + odd], [ONE_HOT[2]] * 5,
                 now=now)
    buckets = result["trend"]["buckets"]
    assert result["trend"]["period"] == "hour"
    assert (buckets[0]["start"], buckets[-1]["start"]) == ("2024-05-01T09:00:00Z",
                                                           "2024-05-01T12:00:00Z")
    assert sum(b["count"] for b in buckets) == 3
    assert result["counts"]["implausible_times"] == 2
    assert any(n.startswith("2 timestamps are before 2005 or in the future") for n in
               result["notes"])
    # a day ahead is a clock or a time zone, not a wrong column
    ahead = run([Comment(text="x", published_at=now + timedelta(hours=20))], [ONE_HOT[0]],
                now=now)
    assert ahead["counts"]["implausible_times"] == 0 and len(ahead["trend"]["buckets"]) == 1


# --- comments ---------------------------------------------------------------------------------


def test_top_comments_by_likes_then_confidence_and_uncertain_by_confidence():
    comments = [
        Comment(text="few likes", likes=1),
        Comment(text="many likes", likes=9),
        Comment(text="tie, sure", likes=3),
        Comment(text="tie, unsure", likes=3),
        Comment(text="positive", likes=100),
    ]
    proba = [[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.95, 0.03, 0.02], [0.4, 0.35, 0.25],
             [0.1, 0.1, 0.8]]
    result = run(comments, proba, top_n=3, uncertain_n=2)
    assert [r["text"] for r in result["top_comments"]["negative"]] == [
        "many likes", "tie, sure", "tie, unsure"
    ]
    assert [r["text"] for r in result["top_comments"]["positive"]] == ["positive"]
    assert result["top_comments"]["neutral"] == []
    assert [r["text"] for r in result["uncertain"]] == ["tie, unsure", "many likes"]
    assert result["uncertain"][0]["confidence"] == 0.4


def test_comment_rows_keep_input_order_and_describe_each_prediction():
    published = datetime(2015, 2, 24, 11, 35, tzinfo=UTC)
    comments = [
        Comment(text="hi", id="c1", author="ann", published_at=published, likes=2),
        Comment(text="re", id="c2", parent_id="c1"),
    ]
    result = run(comments, [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    first, second = result["comments"]
    assert first == {
        "index": 0, "id": "c1", "url": None, "text": "hi", "author": "ann",
        "published_at": "2015-02-24T11:35:00Z", "likes": 2, "is_reply": False,
        "label": "positive", "confidence": 0.5,
        "scores": {"negative": 0.2, "neutral": 0.3, "positive": 0.5},
        "language": None, "other_language": False,
    }
    assert second["is_reply"] is True and second["label"] == "negative"
    assert result["counts"]["replies"] == 1


def test_youtube_comments_link_to_themselves_and_file_rows_do_not():
    video = {"id": "dQw4w9WgXcQ", "title": "t", "channel": "c", "comment_count": 2,
             "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}
    comments = [Comment(text="top", id="UgzAbC"), Comment(text="re", id="UgzAbC.9xY-z_",
                                                          parent_id="UgzAbC")]
    batch = CommentBatch(comments=comments, source={"kind": "youtube", "video": video})
    result = as_sent(analysis.analyze(batch, np.array([ONE_HOT[0]] * 2), LABELS, TINY,
                                      InsightsConfig(), [UNCHECKED] * 2, 0.0))
    assert [row["url"] for row in result["comments"]] == [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&lc=UgzAbC",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&lc=UgzAbC.9xY-z_",
    ]
    assert result["top_comments"]["negative"][0]["url"].endswith("&lc=UgzAbC")
    from_file = run([Comment(text="row", id="1")], [ONE_HOT[0]])
    assert from_file["comments"][0]["url"] is None


def test_probabilities_of_the_wrong_shape_or_nan_are_refused():
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        run([Comment(text="a"), Comment(text="b")], [ONE_HOT[0]])
    with pytest.raises(ValueError, match="finite"):
        run([Comment(text="a")], [[float("nan"), 0.5, 0.5]])


# --- distinctive terms ------------------------------------------------------------------------


def test_tokenize_drops_urls_mentions_numbers_and_stop_words():
    text = "@united Flight 123 was AWFUL!!! http://t.co/x www.x.com don't #fail United's crew"
    assert terms.tokenize(text) == ["flight", "awful", "fail", "united", "crew"]


def test_log_odds_z_matches_the_formula_by_hand():
    # y_a = 2, r_a = 0, a_a = 1, n = m = 2, a0 = 2:
    # delta = log(3 / 1) - log(1 / 3) = 2 log 3; var = 1/3 + 1/1; z = 2 log 3 / sqrt(4/3)
    z = terms.log_odds_z(Counter(a=2), Counter(b=2), {"a": 1.0, "b": 1.0})
    assert z["a"] == pytest.approx(2 * math.log(3) / math.sqrt(4 / 3))
    assert z["b"] == pytest.approx(-z["a"])


def test_distinctive_terms_rank_the_obvious_word_of_each_class_first():
    texts = {
        0: ["delayed flight again", "delayed bag lost", "flight delayed hours", "rude delayed"],
        2: ["great crew flight", "great service", "thanks great flight", "crew great"],
        1: ["flight tomorrow", "which gate tomorrow", "tomorrow flight time"],
    }
    comments, proba = [], []
    for k, items in texts.items():
        for text in items:
            comments.append(Comment(text=text))
            proba.append(ONE_HOT[k])
    found = run(comments, proba, terms_min_count=2, terms_n=3)["terms"]
    assert found["negative"][0] == {"term": "delayed", "z": found["negative"][0]["z"], "count": 4}
    assert found["positive"][0]["term"] == "great"
    assert found["neutral"][0]["term"] == "tomorrow"
    shared = {t["term"]: t["z"] for t in found["positive"]}
    assert "flight" not in shared or shared["flight"] < shared["great"]
    assert all(t["z"] > 0 for rows in found.values() for t in rows)
    # "rude" and "lost" occur once: below terms_min_count, never ranked
    assert {"rude", "lost"}.isdisjoint(t["term"] for rows in found.values() for t in rows)


def test_terms_of_an_empty_corpus_are_empty_lists():
    found = run([Comment(text="the a 123")], [ONE_HOT[0]])["terms"]
    assert found == {"negative": [], "neutral": [], "positive": []}


# --- other languages --------------------------------------------------------------------------


SPANISH = "el vuelo llegó muy tarde otra vez"
ENGLISH = "the flight was late again today, sadly"


def test_other_language_comments_are_listed_but_left_out_of_the_aggregates():
    comments = [Comment(text=SPANISH), Comment(text=ENGLISH), Comment(text="hola amigo"),
                Comment(text=SPANISH + " quizás")]
    # the 4th: Spanish on top, but English not ruled out (P(en) 0.2): not flagged
    languages = [Guess("es", 0.99, 0.001), Guess("en", 0.95, 0.95), Guess("es", 0.99, 0.0),
                 Guess("es", 0.5, 0.2)]
    result = run(comments, [ONE_HOT[2], ONE_HOT[0], ONE_HOT[0], ONE_HOT[0]], languages)
    assert result["counts"]["other_language"] == 1  # short and unsure ones are not flagged
    assert result["counts"]["language_unchecked"] == 1
    assert result["counts"]["analysed"] == 3
    assert [r["other_language"] for r in result["comments"]] == [True, False, False, False]
    assert [r["language"] for r in result["comments"]] == ["es", "en", None, "es"]
    assert {r["label"]: r["count"] for r in result["breakdown"]}["positive"] == 0
    assert all(r["text"] != SPANISH for r in result["top_comments"]["positive"])
    assert any(
        note.startswith("25 % of comments (1 of 4) are not in 'en'") for note in result["notes"]
    )


def test_other_languages_count_when_configured():
    comments = [Comment(text=SPANISH), Comment(text=ENGLISH)]
    languages = [Guess("es", 0.99, 0.0), Guess("en", 0.99, 0.99)]
    result = run(comments, [ONE_HOT[2], ONE_HOT[0]], languages, include_other_languages=True)
    assert result["counts"]["other_language"] == 1
    assert result["counts"]["analysed"] == 2
    assert {r["label"]: r["count"] for r in result["breakdown"]}["positive"] == 1


def test_no_language_check_when_the_model_language_is_unset():
    result = run([Comment(text=SPANISH)], [ONE_HOT[0]], [], language=None)
    assert result["counts"]["other_language"] == 0
    assert result["counts"]["language_unchecked"] == 0
    assert result["comments"][0]["language"] is None


# --- the whole result -------------------------------------------------------------------------


def test_empty_and_normal_results_are_strict_json():
    empty = run([], [])
    assert empty["counts"]["comments"] == 0
    assert [r["share"] for r in empty["breakdown"]] == [0.0, 0.0, 0.0]
    json.dumps(empty, allow_nan=False)
    full = run([Comment(text="great flight", published_at=at(2024, 5, 1))], [ONE_HOT[2]])
    assert set(full) == {
        "model", "source", "labels", "counts", "breakdown", "weighted_breakdown", "trend",
        "top_comments", "uncertain", "terms", "comments", "aspects", "discovered_aspects",
        "notes", "elapsed_s",
    }
    assert full["aspects"] == [] and full["discovered_aspects"] == []
    assert json.loads(json.dumps(full, allow_nan=False)) == full
