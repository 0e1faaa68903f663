"""The analysis of classified comments: breakdown, trend, top comments, distinctive terms (pure).

Every figure is computed here from the model's probabilities; nothing is written by hand.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights.comments import Comment, CommentBatch
from sentiment_pipeline.insights.language import UNCHECKED, Guess

Z95 = 1.959964  # the standard normal quantile of a two-sided 95 % interval
HOUR_MAX_SPAN = timedelta(days=2)
DAY_MAX_SPAN = timedelta(days=90)
WEEK_MAX_SPAN = timedelta(days=730)
PROB_DIGITS = 6  # per-comment scores are rounded: 10,000 rows stay a few MB of JSON

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"@\w+")
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters, with inner apostrophes (don't)
# The English stop words of scikit-learn's list, plus the stems of contractions (don't -> don).
STOP_WORDS = frozenset(
    """a about above across after afterwards again against all almost alone along already also
    although always am among amongst amoungst amount an and another any anyhow anyone anything
    anyway anywhere are around as at back be became because become becomes becoming been before
    beforehand behind being below beside besides between beyond bill both bottom but by call can
    cannot cant co con could couldnt cry de describe detail do done down due during each eg eight
    either eleven else elsewhere empty enough etc even ever every everyone everything everywhere
    except few fifteen fifty fill find fire first five for former formerly forty found four from
    front full further get give go had has hasnt have he hence her here hereafter hereby herein
    hereupon hers herself him himself his how however hundred i ie if in inc indeed interest into
    is it its itself keep last latter latterly least less ltd made many may me meanwhile might
    mill mine more moreover most mostly move much must my myself name namely neither never
    nevertheless next nine no nobody none noone nor not nothing now nowhere of off often on once
    one only onto or other others otherwise our ours ourselves out over own part per perhaps
    please put rather re same see seem seemed seeming seems serious several she should show side
    since sincere six sixty so some somehow someone something sometime sometimes somewhere still
    such system take ten than that the their them themselves then thence there thereafter thereby
    therefore therein thereupon these they thick thin third this those though three through
    throughout thru thus to together too top toward towards twelve twenty two un under until up
    upon us very via was we well were what whatever when whence whenever where whereafter whereas
    whereby wherein whereupon wherever whether which while whither who whoever whole whom whose
    why will with within without would yet you your yours yourself yourselves
    ain aren couldn didn doesn don hadn haven isn let ll mustn shan shouldn ve wasn weren won
    wouldn im ive id youre youve youll its lol rt amp""".split()
)


@dataclass(frozen=True)
class Classified:
    """The batch with its predictions: what every aggregate is computed from."""

    comments: list[Comment]
    labels: list[str]
    proba: np.ndarray  # n x K, rows sum to 1
    predicted: np.ndarray  # n class ids
    languages: list[str | None]  # detected language of each checked comment, else None
    other: np.ndarray  # n bools: flagged as another language
    included: np.ndarray  # n bools: counted in the aggregates


# --- the whole analysis ----------------------------------------------------------------------


def analyze(
    batch: CommentBatch,
    proba: np.ndarray,
    labels: Sequence[str],
    model_info: dict[str, Any],
    config: InsightsConfig,
    languages: Sequence[Guess],
    elapsed: float,
) -> dict[str, Any]:
    """The analysis result (the JSON of /v1/analyze and `analyze --json`) of one batch.

    proba: the model's class probabilities, one row per comment in batch order; languages:
    language.detect of the texts (ignored when config.language is None).
    """
    data = classify(batch, proba, labels, languages, config)
    kept = [c for c, keep in zip(data.comments, data.included, strict=True) if keep]
    kept_ids = data.predicted[data.included]
    rows = comment_rows(data)
    kept_rows = [row for row in rows if not row["other_language"] or config.include_other_languages]
    return {
        "model": dict(model_info),
        "source": batch.source,
        "labels": list(data.labels),
        "counts": counts(data, batch.unparsed_times, config),
        "breakdown": breakdown(kept_ids, data.labels),
        "weighted_breakdown": weighted_breakdown(
            kept_ids, [c.likes for c in kept], data.labels
        ),
        "trend": trend([c.published_at for c in kept], kept_ids, data.labels),
        "top_comments": top_comments(kept_rows, data.labels, config.top_n),
        "uncertain": uncertain(kept_rows, config.uncertain_n),
        "terms": distinctive_terms(
            [c.text for c in kept], kept_ids, data.labels, config.terms_n, config.terms_min_count
        ),
        "comments": rows,
        "notes": notes(batch, data, config),
        "elapsed_s": round(float(elapsed), 4),
    }


def classify(
    batch: CommentBatch,
    proba: np.ndarray,
    labels: Sequence[str],
    languages: Sequence[Guess],
    config: InsightsConfig,
) -> Classified:
    """Check the probabilities against the batch and flag other-language comments."""
    n, k = len(batch.comments), len(labels)
    proba = np.asarray(proba, dtype=np.float64).reshape(-1, k) if n else np.zeros((0, k))
    if proba.shape != (n, k) or not np.isfinite(proba).all():
        raise ValueError(
            f"expected finite probabilities of shape ({n}, {k}) for {n} comments and labels "
            f"{list(labels)}, got shape {proba.shape}"
        )
    if config.language is not None and len(languages) != n:
        raise ValueError(f"expected {n} detected languages, got {len(languages)}")
    checked = [language_checked(c.text, config) for c in batch.comments]
    guesses = list(languages) or [UNCHECKED] * n
    detected = [g.language if ok else None for ok, g in zip(checked, guesses, strict=True)]
    other = np.array([ok and flagged(g, config) for ok, g in zip(checked, guesses, strict=True)],
                     dtype=bool)
    included = np.ones(n, dtype=bool) if config.include_other_languages else ~other
    return Classified(
        comments=list(batch.comments),
        labels=list(labels),
        proba=proba,
        predicted=proba.argmax(axis=1) if n else np.zeros(0, dtype=np.int64),
        languages=detected,
        other=other,
        included=included,
    )


def flagged(guess: Guess, config: InsightsConfig) -> bool:
    """Another language: the identifier leaves the model's language almost no probability."""
    return (
        guess.language is not None
        and guess.language != config.language
        and guess.expected is not None
        and guess.expected < config.language_max_probability
    )


def language_checked(text: str, config: InsightsConfig) -> bool:
    """Whether a comment is long enough for its detected language to count."""
    return config.language is not None and len(text.strip()) >= config.language_min_chars


# --- counts, breakdowns ----------------------------------------------------------------------


def wilson_interval(count: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion count/n; (0, 1) when n is 0 (nothing known)."""
    if n <= 0:
        return 0.0, 1.0
    p = count / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def breakdown(predicted: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Count, share and 95 % Wilson interval of each predicted class."""
    n = int(len(predicted))
    totals = np.bincount(predicted, minlength=len(labels)) if n else np.zeros(len(labels), int)
    result = []
    for label, count in zip(labels, totals, strict=True):
        low, high = wilson_interval(int(count), n)
        share = int(count) / n if n else 0.0
        result.append(
            {"label": label, "count": int(count), "share": share, "ci_low": low, "ci_high": high}
        )
    return result


def weighted_breakdown(
    predicted: np.ndarray, likes: Sequence[int], labels: Sequence[str]
) -> list[dict[str, Any]]:
    """Each class's share when a comment weighs 1 + its likes (a liked opinion is shared)."""
    weights = 1.0 + np.maximum(np.asarray(likes, dtype=np.float64).reshape(-1), 0.0)
    totals = (
        np.bincount(predicted, weights=weights, minlength=len(labels))
        if len(predicted)
        else np.zeros(len(labels))
    )
    whole = float(totals.sum())
    return [
        {"label": label, "weight": float(w), "share": float(w) / whole if whole else 0.0}
        for label, w in zip(labels, totals, strict=True)
    ]


def counts(data: Classified, unparsed_times: int, config: InsightsConfig) -> dict[str, int]:
    """How many comments there are, how many the aggregates use, and why the others not.

    with_time / no_time are over all comments; no_time excludes the unparseable timestamps.
    """
    n = len(data.comments)
    with_time = sum(c.published_at is not None for c in data.comments)
    unchecked = sum(
        config.language is not None and not language_checked(c.text, config)
        for c in data.comments
    )
    return {
        "comments": n,
        "analysed": int(data.included.sum()),
        "replies": sum(c.parent_id is not None for c in data.comments),
        "other_language": int(data.other.sum()),
        "language_unchecked": int(unchecked),
        "with_time": int(with_time),
        "unparsed_times": int(unparsed_times),
        "no_time": max(0, n - with_time - int(unparsed_times)),
    }


# --- trend -----------------------------------------------------------------------------------


def choose_period(span: timedelta) -> str:
    """The bucket size for dated comments spanning `span`: hour, day, week or month."""
    if span <= HOUR_MAX_SPAN:
        return "hour"
    if span <= DAY_MAX_SPAN:
        return "day"
    if span <= WEEK_MAX_SPAN:
        return "week"
    return "month"


def as_utc(moment: datetime) -> datetime:
    """A timestamp in UTC (a naive one is taken as UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bucket_start(moment: datetime, period: str) -> datetime:
    """The start of the UTC bucket holding `moment`: the hour, midnight, Monday or the 1st."""
    moment = as_utc(moment)
    if period == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}; expected hour, day, week or month")


def next_bucket(start: datetime, period: str) -> datetime:
    """The start of the bucket after the one starting at `start`."""
    if period == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
    return start + step[period]


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, e.g. 2015-02-24T11:35:00Z."""
    if moment is None:
        return None
    text = as_utc(moment).isoformat()
    return text.removesuffix("+00:00") + "Z"


def trend(
    times: Sequence[datetime | None], predicted: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Counts and class shares per period; empty periods between the first and last included."""
    dated = [(as_utc(t), int(k)) for t, k in zip(times, predicted, strict=True) if t is not None]
    if not dated:
        return {"period": None, "buckets": []}
    first = min(t for t, _ in dated)
    last = max(t for t, _ in dated)
    period = choose_period(last - first)
    tally: dict[datetime, Counter[int]] = {}
    for moment, k in dated:
        tally.setdefault(bucket_start(moment, period), Counter())[k] += 1
    buckets = []
    start, end = bucket_start(first, period), bucket_start(last, period)
    while start <= end:
        found = tally.get(start, Counter())
        total = sum(found.values())
        buckets.append(
            {
                "start": iso(start),
                "count": total,
                "counts": {label: found[i] for i, label in enumerate(labels)},
                "shares": {
                    label: found[i] / total if total else 0.0 for i, label in enumerate(labels)
                },
            }
        )
        start = next_bucket(start, period)
    return {"period": period, "buckets": buckets}


# --- comments --------------------------------------------------------------------------------


def comment_rows(data: Classified) -> list[dict[str, Any]]:
    """One row per comment, in input order: its prediction, scores and language flag."""
    rows = []
    for i, comment in enumerate(data.comments):
        scores = data.proba[i]
        rows.append(
            {
                "index": i,
                "id": comment.id,
                "text": comment.text,
                "author": comment.author,
                "published_at": iso(comment.published_at),
                "likes": int(comment.likes),
                "is_reply": comment.parent_id is not None,
                "label": data.labels[int(data.predicted[i])],
                "confidence": round(float(scores.max()), PROB_DIGITS),
                "scores": {
                    label: round(float(p), PROB_DIGITS)
                    for label, p in zip(data.labels, scores, strict=True)
                },
                "language": data.languages[i],
                "other_language": bool(data.other[i]),
            }
        )
    return rows


def top_comments(
    rows: Sequence[dict[str, Any]], labels: Sequence[str], top_n: int
) -> dict[str, list[dict[str, Any]]]:
    """Each class's most liked comments (ties: the more confident first, then input order)."""
    ranked = sorted(rows, key=lambda r: (-r["likes"], -r["confidence"], r["index"]))
    return {label: [r for r in ranked if r["label"] == label][:top_n] for label in labels}


def uncertain(rows: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The `n` predictions the model was least sure of (lowest top probability first)."""
    return sorted(rows, key=lambda r: (r["confidence"], r["index"]))[:n]


# --- distinctive terms -----------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-case words without URLs, @mentions, numbers and English stop words."""
    text = MENTION.sub(" ", URL.sub(" ", text.lower().replace("\u2019", "'")))
    words = []
    for word in WORD.findall(text):
        word = word.removesuffix("'s")
        if len(word) > 1 and word not in STOP_WORDS and word.split("'")[0] not in STOP_WORDS:
            words.append(word)
    return words


def log_odds_z(
    class_counts: Counter[str],
    rest_counts: Counter[str],
    prior: dict[str, float],
) -> dict[str, float]:
    """Monroe, Colaresi & Quinn (2008) log-odds-ratio z-scores, informative Dirichlet prior.

    delta_w = log((y_w + a_w) / (n + a0 - y_w - a_w)) - log((r_w + a_w) / (m + a0 - r_w - a_w)),
    var_w ~ 1 / (y_w + a_w) + 1 / (r_w + a_w), z_w = delta_w / sqrt(var_w), for every word w of
    `prior` (a_w > 0, a0 = sum of a_w); n and m are the class's and the rest's token counts.
    A one-word vocabulary has no odds (nothing else to compare with): its z is 0.
    """
    if len(prior) < 2:
        return dict.fromkeys(prior, 0.0)
    a0 = sum(prior.values())
    n, m = sum(class_counts.values()), sum(rest_counts.values())
    scores = {}
    for word, a in prior.items():
        y, r = class_counts[word], rest_counts[word]
        delta = math.log((y + a) / (n + a0 - y - a)) - math.log((r + a) / (m + a0 - r - a))
        scores[word] = delta / math.sqrt(1 / (y + a) + 1 / (r + a))
    return scores


def distinctive_terms(
    texts: Sequence[str],
    predicted: np.ndarray,
    labels: Sequence[str],
    top_n: int,
    min_count: int,
    prior_size: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The words that set each class apart from the others (one class vs the rest).

    The prior is the whole corpus' word frequencies scaled to `prior_size` pseudo-counts (None:
    the corpus' own token count, i.e. a_w = the word's corpus count). Words seen fewer than
    `min_count` times are not ranked; only words more frequent in the class (z > 0) are shown.
    """
    per_class = [Counter[str]() for _ in labels]
    for text, k in zip(texts, predicted, strict=True):
        per_class[int(k)].update(tokenize(text))
    corpus: Counter[str] = sum(per_class, Counter())
    total = sum(corpus.values())
    if not total:
        return {label: [] for label in labels}
    scale = (prior_size if prior_size is not None else total) / total
    prior = {w: c * scale for w, c in corpus.items()}
    ranked_words = {w for w, c in corpus.items() if c >= min_count}
    result = {}
    for k, label in enumerate(labels):
        rest = corpus - per_class[k]
        z = log_odds_z(per_class[k], rest, prior)
        best = sorted(
            (w for w in ranked_words if z[w] > 0 and per_class[k][w] > 0),
            key=lambda w: (-z[w], w),
        )[:top_n]
        result[label] = [
            {"term": w, "z": round(z[w], 4), "count": per_class[k][w]} for w in best
        ]
    return result


# --- notes -----------------------------------------------------------------------------------


def percent(part: int, whole: int) -> str:
    """A share as a whole percentage, e.g. '62 %' ('< 1 %' rather than a misleading 0)."""
    value = 100 * part / whole if whole else 0.0
    return "< 1 %" if 0 < value < 1 else f"{value:.0f} %"


def notes(batch: CommentBatch, data: Classified, config: InsightsConfig) -> list[str]:
    """Caveats a reader needs: the source's, other languages, timestamps, the weighting."""
    n = len(data.comments)
    found = list(batch.notes)
    other = int(data.other.sum())
    if other:
        where = (
            "they are counted in the aggregates too (insights.include_other_languages)"
            if config.include_other_languages
            else "they are listed but left out of the breakdown, trend, top comments and terms"
        )
        found.append(
            f"{percent(other, n)} of comments ({other} of {n}) are not in {config.language!r} "
            f"(the language identifier gives {config.language!r} under "
            f"{config.language_max_probability:.0%}); "
            f"the model was not trained for them, so {where}."
        )
    if batch.unparsed_times:
        found.append(
            f"{batch.unparsed_times} timestamps could not be parsed; those comments are left "
            "out of the trend."
        )
    if n and not any(c.published_at is not None for c in data.comments):
        found.append("No comment has a timestamp, so there is no trend.")
    found.append("The like-weighted breakdown counts each comment as 1 + its likes.")
    return found
