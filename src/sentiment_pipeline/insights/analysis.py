"""The analysis of classified comments: breakdown, counts, top comments, notes (pure).

Every figure is computed here (and in trend and terms) from the model's probabilities; nothing
is written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights.aspect_analysis import aspect_results, discovered
from sentiment_pipeline.insights.aspects import AspectScores
from sentiment_pipeline.insights.comments import Comment, CommentBatch
from sentiment_pipeline.insights.language import UNCHECKED, Guess
from sentiment_pipeline.insights.result import AnalysisResult, CommentRow, Counts, ModelInfo
from sentiment_pipeline.insights.shares import PROB_DIGITS, breakdown, weighted_breakdown
from sentiment_pipeline.insights.terms import distinctive_terms
from sentiment_pipeline.insights.trend import TimeCheck, check_times, iso, trend
from sentiment_pipeline.insights.wording import cut, plural, readable_time
from sentiment_pipeline.insights.youtube_links import comment_url


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
    model_info: ModelInfo,
    config: InsightsConfig,
    languages: Sequence[Guess],
    elapsed: float,
    now: datetime | None = None,
    aspects: AspectScores | None = None,
) -> AnalysisResult:
    """The analysis result (the JSON of /v1/analyze and `analyze --json`) of one batch.

    proba: the model's class probabilities, one row per comment in batch order; languages:
    language.detect of the texts (ignored when config.language is None); now: the time times
    in the future are judged against (default: the clock's); aspects: the mentions the aspect
    model scored (aspects.score_aspects), None when no aspect was asked for.
    """
    data = classify(batch, proba, labels, languages, config)
    times = check_times([c.published_at for c in data.comments], now or datetime.now(UTC))
    kept = [c for c, keep in zip(data.comments, data.included, strict=True) if keep]
    kept_times = [t for t, keep in zip(times.usable, data.included, strict=True) if keep]
    kept_ids = data.predicted[data.included]
    video = batch.source.get("video") if batch.source.get("kind") == "youtube" else None
    rows = comment_rows(data, config.max_text_chars, video["id"] if video else None)
    kept_rows = [row for row in rows if not row.other_language or config.include_other_languages]
    return AnalysisResult(
        model=model_info,
        source=batch.source,
        labels=list(data.labels),
        counts=counts(data, batch.unparsed_times, times, config),
        breakdown=breakdown(kept_ids, data.labels),
        weighted_breakdown=weighted_breakdown(kept_ids, [c.likes for c in kept], data.labels),
        trend=trend(kept_times, kept_ids, data.labels),
        top_comments=top_comments(kept_rows, data.labels, config.top_n),
        uncertain=uncertain(kept_rows, config.uncertain_n),
        terms=distinctive_terms(
            [c.text for c in kept], kept_ids, data.labels, config.terms_n, config.terms_min_count
        ),
        comments=rows,
        aspects=aspect_results(
            aspects, data.comments, data.included, times.usable,
            examples_n=config.aspect_examples_n, max_chars=config.max_text_chars,
            video_id=video["id"] if video else None,
        ) if aspects else [],
        discovered_aspects=discovered(aspects) if aspects else [],
        notes=notes(batch, data, times, config) + (aspect_notes(aspects) if aspects else []),
        elapsed_s=round(float(elapsed), 4),
    )


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


# --- counts --------------------------------------------------------------------------------------


def counts(
    data: Classified, unparsed_times: int, times: TimeCheck, config: InsightsConfig
) -> Counts:
    """How many comments there are, how many the aggregates use, and why the others not.

    with_time / no_time are over all comments; no_time excludes the unparseable timestamps.
    """
    n = len(data.comments)
    with_time = sum(c.published_at is not None for c in data.comments)
    unchecked = sum(
        config.language is not None and not language_checked(c.text, config)
        for c in data.comments
    )
    return Counts(
        comments=n,
        analysed=int(data.included.sum()),
        replies=sum(c.parent_id is not None for c in data.comments),
        other_language=int(data.other.sum()),
        language_unchecked=int(unchecked),
        with_time=int(with_time),
        unparsed_times=int(unparsed_times),
        implausible_times=times.left_out,
        no_time=max(0, n - with_time - int(unparsed_times)),
    )


# --- comments --------------------------------------------------------------------------------


def comment_rows(
    data: Classified, max_chars: int, video_id: str | None = None
) -> list[CommentRow]:
    """One row per comment, in input order: its prediction, scores and language flag; its
    text, author and id cut to `max_chars` characters (an answer does not echo megabytes);
    its link when it is a comment of the YouTube video `video_id`."""
    rows = []
    for i, comment in enumerate(data.comments):
        scores = data.proba[i]
        rows.append(
            CommentRow(
                index=i,
                id=cut(comment.id, max_chars),
                url=comment_url(video_id, comment.id) if video_id and comment.id else None,
                text=cut(comment.text, max_chars),
                author=cut(comment.author, max_chars),
                published_at=iso(comment.published_at),
                likes=int(comment.likes),
                is_reply=comment.parent_id is not None,
                label=data.labels[int(data.predicted[i])],
                confidence=round(float(scores.max()), PROB_DIGITS),
                scores={
                    label: round(float(p), PROB_DIGITS)
                    for label, p in zip(data.labels, scores, strict=True)
                },
                language=data.languages[i],
                other_language=bool(data.other[i]),
            )
        )
    return rows


def top_comments(
    rows: Sequence[CommentRow], labels: Sequence[str], top_n: int
) -> dict[str, list[CommentRow]]:
    """Each class's most liked comments (ties: the more confident first, then input order)."""
    ranked = sorted(rows, key=lambda r: (-r.likes, -r.confidence, r.index))
    return {label: [r for r in ranked if r.label == label][:top_n] for label in labels}


def uncertain(rows: Sequence[CommentRow], n: int) -> list[CommentRow]:
    """The `n` predictions the model was least sure of (lowest top probability first)."""
    return sorted(rows, key=lambda r: (r.confidence, r.index))[:n]


# --- notes -----------------------------------------------------------------------------------


def time_note(times: TimeCheck) -> str:
    """What is wrong with the times left out of the trend, and what to check."""
    odd, example = len(times.implausible), times.implausible[0]
    if not times.dropped:
        return (
            f"{plural(odd, 'timestamp')} {'is' if odd == 1 else 'are'} before 2005 or in the "
            f"future (e.g. {readable_time(example)}) and left out of the trend."
        )
    counts_hint = (
        " Small numbers such as like counts, read as seconds since 1970, look like this."
        if example.year == 1970
        else ""
    )
    return (
        f"{odd} of {times.dated} timestamps are before 2005 or in the future (e.g. "
        f"{readable_time(example)}), so they are not the comments' times and there is no "
        f"trend; check which column holds the times.{counts_hint}"
    )


def percent(part: int, whole: int) -> str:
    """A share as a whole percentage, e.g. '62 %' ('< 1 %' rather than a misleading 0)."""
    value = 100 * part / whole if whole else 0.0
    return "< 1 %" if 0 < value < 1 else f"{value:.0f} %"


def notes(
    batch: CommentBatch, data: Classified, times: TimeCheck, config: InsightsConfig
) -> list[str]:
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
            f"{plural(batch.unparsed_times, 'timestamp')} could not be parsed; those comments are "
            "left out of the trend."
        )
    if n and not any(c.published_at is not None for c in data.comments):
        found.append("No comment has a timestamp, so there is no trend.")
    if times.implausible:
        found.append(time_note(times))
    found.append("The like-weighted breakdown counts each comment as 1 + its likes.")
    return found


def aspect_notes(aspects: AspectScores) -> list[str]:
    """Which model read the aspects, and what a mention is."""
    return [
        f"Aspects were read by the aspect model {aspects.model_name}, once per comment that "
        "mentions them (the first mention), with the term as it occurs in the comment."
    ]
