"""Per-aspect figures from the scored mentions: counts, shares, net sentiment, trend, examples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from sentiment_pipeline.insights.aspects import NEGATIVE, POSITIVE, AspectScores, Mention
from sentiment_pipeline.insights.comments import Comment
from sentiment_pipeline.insights.result import (
    AspectExample,
    AspectMention,
    AspectResult,
    DiscoveredAspect,
    NetSentiment,
)
from sentiment_pipeline.insights.shares import (
    PROB_DIGITS,
    breakdown,
    net_interval,
    weighted_breakdown,
)
from sentiment_pipeline.insights.trend import trend
from sentiment_pipeline.insights.wording import cut
from sentiment_pipeline.insights.youtube_links import comment_url


def aspect_results(
    scores: AspectScores,
    comments: Sequence[Comment],
    included: np.ndarray,
    times: Sequence[datetime | None],
    *,
    examples_n: int,
    max_chars: int,
    video_id: str | None = None,
) -> list[AspectResult]:
    """One result per aspect over the analysed (`included`) comments that mention it; `times`:
    each comment's time the trend may use (trend.check_times), else None."""
    analysed = int(np.count_nonzero(included))
    predicted = scores.proba.argmax(axis=1) if len(scores.mentions) else np.zeros(0, int)
    by_aspect: list[list[int]] = [[] for _ in scores.specs]
    for row, mention in enumerate(scores.mentions):
        if included[mention.comment]:
            by_aspect[mention.aspect].append(row)
    creator = len(scores.specs) - len(scores.discovered)
    results = []
    for k, (spec, rows) in enumerate(zip(scores.specs, by_aspect, strict=True)):
        ids = predicted[rows].astype(np.int64)
        chosen = [scores.mentions[r] for r in rows]
        likes = [comments[m.comment].likes for m in chosen]
        mentions = [
            AspectMention(
                index=m.comment, term=m.term, label=scores.labels[int(i)],
                confidence=round(float(scores.proba[r, i]), PROB_DIGITS),
            )
            for m, r, i in zip(chosen, rows, ids, strict=True)
        ]
        results.append(AspectResult(
            name=spec.name,
            terms=spec.all_terms,
            discovered=k >= creator,
            count=len(rows),
            share=len(rows) / analysed if analysed else 0.0,
            breakdown=breakdown(ids, scores.labels),
            weighted_breakdown=weighted_breakdown(ids, likes, scores.labels),
            net=net_sentiment(ids, scores.labels),
            trend=trend([times[m.comment] for m in chosen], ids, scores.labels),
            examples=examples(
                chosen, mentions, comments, scores.labels, examples_n, max_chars, video_id
            ),
            mentions=mentions,
        ))
    return results


def discovered(scores: AspectScores) -> list[DiscoveredAspect]:
    """The suggested aspects with the number of comments that mention each."""
    return [DiscoveredAspect(term=term, count=count) for term, count in scores.discovered]


def net_sentiment(ids: np.ndarray, labels: Sequence[str]) -> NetSentiment:
    """Positive share minus negative share of the mentions, with its 95 % interval."""
    tally = np.bincount(ids, minlength=len(labels)) if len(ids) else np.zeros(len(labels), int)
    positive, negative = (int(tally[list(labels).index(c)]) for c in (POSITIVE, NEGATIVE))
    value, low, high = net_interval(positive, negative, len(ids))
    return NetSentiment(value=value, ci_low=low, ci_high=high)


def examples(
    chosen: Sequence[Mention],
    mentions: Sequence[AspectMention],
    comments: Sequence[Comment],
    labels: Sequence[str],
    n: int,
    max_chars: int,
    video_id: str | None,
) -> dict[str, list[AspectExample]]:
    """Each class's `n` most liked mentions (ties: the more confident, then input order), with
    the aspect's span in the example's text."""
    ranked = sorted(
        zip(chosen, mentions, strict=True),
        key=lambda pair: (-comments[pair[0].comment].likes, -pair[1].confidence, pair[0].comment),
    )
    found: dict[str, list[AspectExample]] = {label: [] for label in labels}
    for mention, row in ranked:
        if len(found[row.label]) >= n:
            continue
        comment = comments[mention.comment]
        text, start, end = excerpt(comment.text, mention.start, mention.end, max_chars)
        found[row.label].append(AspectExample(
            index=mention.comment,
            id=cut(comment.id, max_chars),
            url=comment_url(video_id, comment.id) if video_id and comment.id else None,
            text=text, start=start, end=end, label=row.label, confidence=row.confidence,
            likes=int(comment.likes),
        ))
    return found


def excerpt(text: str, start: int, end: int, max_chars: int) -> tuple[str, int, int]:
    """At most `max_chars` characters of `text` around text[start:end] ('…' where cut; the span
    itself is never cut), and the span's offsets in it."""
    if len(text) <= max_chars:
        return text, start, end
    left = max(0, start - max(max_chars - (end - start), 0) // 2)
    right = max(min(len(text), left + max_chars), end)
    left = max(0, min(left, right - max_chars, start))
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    shift = len(prefix) - left
    return f"{prefix}{text[left:right]}{suffix}", start + shift, end + shift
