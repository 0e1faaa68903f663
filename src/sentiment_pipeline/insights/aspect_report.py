"""The report's aspects section (the aspect marked in its comments) and the mentions CSV."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from sentiment_pipeline.insights.markup import csv_text, percent, table
from sentiment_pipeline.insights.result import AnalysisResult, AspectExample, AspectResult

NET = 6  # the footnote that says what net sentiment is
NET_NOTE = (
    "Net sentiment: the share of an aspect's mentions the aspect model reads as positive minus "
    "the share it reads as negative, from -100 % (all negative) to +100 % (all positive); its "
    "likely range is a 95 % interval for a difference of two shares of one sample (Zou and "
    "Donner's MOVER, from the shares' Wilson intervals)."
)


def signed(value: float) -> str:
    return f"{100 * value:+.0f} %"


def marked(text: str, start: int, end: int) -> str:
    """The text escaped, with text[start:end] in <mark> (every part escaped on its own)."""
    return (f"{escape(text[:start])}<mark>{escape(text[start:end])}</mark>"
            f"{escape(text[end:])}")


def aspects_section(result: AnalysisResult) -> str:
    """The aspects table (mentions, net sentiment, class shares), the suggestions, and each
    aspect's example comments with the aspect marked."""
    labels = [r.label for r in result.aspects[0].breakdown] if result.aspects else []
    parts = [
        "<p>How the comments that mention each aspect feel about it, as the aspect model reads "
        "them (a comment counts once per aspect).</p>",
        table(
            ["aspect", "comments", "share of comments", ("net sentiment", NET),
             "likely range", *labels],
            (aspect_row(aspect) for aspect in result.aspects),
        ),
    ]
    if result.discovered_aspects:
        found = ", ".join(f"{d.term} ({d.count})" for d in result.discovered_aspects)
        parts.append(f"<p>Suggested aspects (comments that mention them): {escape(found)}</p>")
    parts += [aspect_examples(aspect, labels) for aspect in result.aspects if aspect.count]
    return "\n".join(parts)


def aspect_row(aspect: AspectResult) -> list[tuple[str, bool]]:
    name = f"{aspect.name} (discovered)" if aspect.discovered else aspect.name
    return [
        (name, False),
        (str(aspect.count), True),
        (percent(aspect.share), True),
        (signed(aspect.net.value), True),
        (f"{signed(aspect.net.ci_low)} to {signed(aspect.net.ci_high)}", True),
        *((percent(r.share), True) for r in aspect.breakdown),
    ]


def example_block(example: AspectExample) -> str:
    likes = f"{example.likes:,} like" + ("" if example.likes == 1 else "s")
    facts = f"{example.label} ({percent(example.confidence)} sure) · {likes}"
    return (f'<div class="comment">{marked(example.text, example.start, example.end)}'
            f"<small>{escape(facts)}</small></div>")


def aspect_examples(aspect: AspectResult, labels: Sequence[str]) -> str:
    blocks = []
    for label in labels:
        shown = aspect.examples.get(label, [])
        content = "\n".join(example_block(e) for e in shown) if shown else "<p>None.</p>"
        blocks.append(f"<div><h4>{escape(label)}</h4>{content}</div>")
    return (f"<h3>{escape(aspect.name)}: example comments</h3>"
            f'<div class="columns">{"".join(blocks)}</div>')


def mentions_csv(result: AnalysisResult) -> str:
    """One row per comment and aspect it mentions, in comment order (then the aspects'),
    formula-safe as comments_csv is."""
    texts = {row.index: row for row in result.comments}
    header = ["index", "id", "aspect", "term", "label", "confidence", "text"]
    mentions = sorted(
        ((m, aspect.name) for aspect in result.aspects for m in aspect.mentions),
        key=lambda pair: pair[0].index,
    )
    rows = (
        [m.index, texts[m.index].id, name, m.term, m.label, m.confidence, texts[m.index].text]
        for m, name in mentions
    )
    return csv_text(header, rows)
