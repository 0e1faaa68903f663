"""The analysis as a self-contained HTML report, and its per-comment rows as CSV.

Every piece of text from outside (comments, authors, class names, the video's title) goes
through html.escape. The charts are embedded as `data:` images, so the file needs no network,
and a policy in the page forbids scripts and every fetch but those inline images. The only
links lead to YouTube comments, built from the video and comment ids (comment_url).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from sentiment_pipeline.insights.aspect_report import NET, NET_NOTE, aspects_section
from sentiment_pipeline.insights.markup import csv_text, note_mark, percent, section, table
from sentiment_pipeline.insights.result import (
    AnalysisResult,
    BreakdownRow,
    Charts,
    CommentRow,
    Counts,
    FileSource,
    ModelInfo,
    Source,
    Term,
    Trend,
    WeightedRow,
    YouTubeSource,
)
from sentiment_pipeline.insights.wording import plural, readable_time

# No scripts, no fetches: only inline styles and the charts' data: URLs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# The only place a link may lead (a result read back from JSON could hold any URL).
YOUTUBE = "https://www.youtube.com/watch?"
CHART_TITLES = {
    "breakdown": "How people feel",
    "trend": "Over time",
    "terms": "Words that set each sentiment apart",
    "aspects": "Aspects by net sentiment",
}
# The technical terms behind the figures, said once at the foot of the page; the tables and
# the text above point here with the footnote's number.
RANGE, LIKES, DISTINCTIVE, TIMES, MODEL = 1, 2, 3, 4, 5
FOOTNOTES = {
    RANGE: "Likely range: the 95 % confidence interval of the share (a Wilson score interval). "
           "With this many comments, the share among all such comments lies in it 19 times in "
           "20; the fewer the comments, the wider it is.",
    LIKES: "Share counting likes: each comment counts once, plus once for each like it has "
           "(the like-weighted breakdown).",
    DISTINCTIVE: "How distinctive: the z-score of the word's log-odds ratio with an "
                 "informative Dirichlet prior (Monroe, Colaresi and Quinn, 2008): how much more "
                 "often the word is used in this sentiment's comments than in the others', "
                 "allowing for how common it is. Above 2 is rarely chance.",
    TIMES: "Times are in UTC (Coordinated Universal Time); periods start at midnight UTC, "
           "weeks on Mondays.",
}
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2433;
       margin: 0 auto; max-width: 1100px; padding: 1.5rem; background: #fafafa; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; font-size: 1.25rem; }
.meta { color: #5b6475; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: .8rem; padding: 0; }
.figures li { list-style: none; background: #fff; border: 1px solid #dde1e8; border-radius: 8px;
              padding: .6rem 1rem; min-width: 8rem; }
.figures b { display: block; font-size: 1.5rem; }
table { border-collapse: collapse; background: #fff; margin: .5rem 0; }
th, td { border: 1px solid #dde1e8; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; background: #fff; border: 1px solid #dde1e8; border-radius: 8px;
         padding: .5rem; } figure img { max-width: 100%; height: auto; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr));
           gap: 1rem; }
.comment { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .4rem .6rem;
           margin: .4rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.comment mark { background: #ffe08a; padding: 0 .1em; }
.comment small { display: block; color: #5b6475; white-space: normal; }
.notes li { margin: .3rem 0; }
.footnotes { color: #5b6475; font-size: .9rem; }
sup a { text-decoration: none; }
"""


def render_html(result: AnalysisResult, charts: Charts | None = None) -> str:
    """The whole report: summary figures, breakdown table, charts, terms, comments, notes, and
    the technical terms in footnotes."""
    labels = result.labels
    body = [
        f"<h1>Audience insights: {escape(source_title(result.source))}</h1>",
        f'<p class="meta">{escape(model_line(result.model))}{note_mark(MODEL)} &middot; '
        f"analysed in {result.elapsed_s:.2f} s</p>",
        summary_figures(result.counts, result.breakdown),
        section("How people feel", breakdown_table(result.breakdown, result.weighted_breakdown)),
        section("Charts", chart_figures(charts or result.charts)),
        section("Over time", trend_table(result.trend, labels)),
        section("Words that set each sentiment apart", terms_tables(result.terms, labels)),
        *([section("Aspects", aspects_section(result))] if result.aspects else []),
        section("Most liked comments per sentiment", top_comments(result.top_comments, labels)),
        section("Comments the model was least sure of", comment_list(result.uncertain, labels)),
        section("Notes", bullet_list(result.notes, "notes")),
        section("Source", source_table(result.source)),
        section("About these figures", footnotes(result.model, bool(result.aspects))),
    ]
    return page(f"Audience insights: {source_title(result.source)}", body)


def footnotes(model: ModelInfo, aspects: bool = False) -> str:
    """The technical terms behind the figures, and the model's technical description (and net
    sentiment's, when there are aspects)."""
    version = f" version {model.version}" if model.version else ""
    notes = {**FOOTNOTES, MODEL: f"The model: {model.name}{version}, a {model.kind} model run "
                                 f"on the {model.backend} backend."}
    if aspects:
        notes[NET] = NET_NOTE
    items = "".join(f'<li id="note-{number}">{escape(text)}</li>'
                    for number, text in sorted(notes.items()))
    return f'<ol class="footnotes">{items}</ol>'


def page(title: str, body: Iterable[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def source_title(source: Source) -> str:
    """A short name for where the comments came from."""
    if isinstance(source, YouTubeSource):
        return source.video.title or source.video.id
    if isinstance(source, FileSource):
        return source.file or "a file"
    return "submitted comments"


def model_line(model: ModelInfo) -> str:
    version = f" (version {model.version})" if model.version else ""
    return f"Read by the model {model.name}{version}"


def summary_figures(counts: Counts, rows: Sequence[BreakdownRow]) -> str:
    figures: list[tuple[str, Any]] = [
        ("comments", counts.comments),
        ("analysed", counts.analysed),
        ("other language", counts.other_language),
        ("replies", counts.replies),
        ("with a time", counts.with_time),
    ]
    if counts.analysed:
        top = max(rows, key=lambda r: r.count)
        figures.append((f"{top.label} (the largest group)", percent(top.share)))
    items = "".join(f"<li><b>{escape(str(v))}</b>{escape(name)}</li>" for name, v in figures)
    return f'<ul class="figures">{items}</ul>'


def breakdown_table(rows: Sequence[BreakdownRow], weighted: Sequence[WeightedRow]) -> str:
    weight_share = {w.label: w.share for w in weighted}
    return table(
        ["sentiment", "comments", "share", ("likely range", RANGE),
         ("share counting likes", LIKES)],
        (
            [
                (r.label, False),
                (str(r.count), True),
                (percent(r.share), True),
                (f"{percent(r.ci_low)} to {percent(r.ci_high)}", True),
                (percent(weight_share.get(r.label, 0.0)), True),
            ]
            for r in rows
        ),
    )


def chart_figures(charts: Charts | None) -> str:
    """Each chart as an <img> of a data: URL: inline, and never parsed as part of the page."""
    if charts is None:
        return "<p>Charts were not rendered.</p>"
    figures = []
    for name, svg in charts.model_dump().items():
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        title = CHART_TITLES.get(name, name)
        figures.append(
            f'<figure><img alt="{escape(title)} chart" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{escape(title)}</figcaption></figure>"
        )
    return "\n".join(figures)


def trend_table(trend: Trend, labels: Sequence[str]) -> str:
    if not trend.buckets or trend.period is None:
        return "<p>No dated comments, so no trend.</p>"
    period = trend.period
    return (
        f"<p>Comments per {escape(period)}, with each sentiment's share "
        f"(times in UTC{note_mark(TIMES)}).</p>"
        + table(
            [period, "comments", *labels],
            (
                [(period_start(b.start, period), False), (str(b.count), True)]
                + [(percent(b.shares[label]), True) for label in labels]
                for b in trend.buckets
            ),
        )
    )


def period_start(start: str, period: str) -> str:
    """A bucket's start as people write it: '24 Feb 2015, 11:00' for an hour, 'week of 23 Feb
    2015', '24 Feb 2015' for a day, 'Feb 2015' for a month."""
    moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
    day = f"{moment.day} {moment:%b %Y}"
    return {"hour": f"{day}, {moment:%H:%M}", "week": f"week of {day}",
            "month": f"{moment:%b %Y}"}.get(period, day)


def terms_tables(terms: dict[str, list[Term]], labels: Sequence[str]) -> str:
    blocks = []
    for label in labels:
        rows = terms.get(label, [])
        content = (
            table(
                ["word", ("how distinctive", DISTINCTIVE), "times used"],
                ([(t.term, False), (f"{t.z:.1f}", True), (str(t.count), True)]
                 for t in rows),
            )
            if rows
            else "<p>No word stands out.</p>"
        )
        blocks.append(f"<div><h3>{escape(label)}</h3>{content}</div>")
    return f'<div class="columns">{"".join(blocks)}</div>'


def comment_block(row: CommentRow, labels: Sequence[str]) -> str:
    """One comment as text, with its sentiment, how sure the model is, likes, author, time,
    and a link to it on YouTube when it has one."""
    facts = [
        f"{row.label} ({percent(row.confidence)} sure)",
        plural(row.likes, "like"),
    ]
    if row.author:
        facts.append(f"by {row.author}")
    if row.published_at:
        facts.append(readable_time(row.published_at))
    if row.is_reply:
        facts.append("a reply")
    if row.other_language:
        facts.append(f"in another language ({row.language})")
    scores = ", ".join(f"{label} {percent(row.scores[label])}" for label in labels)
    link = (
        f' &middot; <a href="{escape(row.url)}" rel="noopener noreferrer">open on YouTube</a>'
        if row.url and row.url.startswith(YOUTUBE) else ""
    )
    return (
        f'<div class="comment">{escape(row.text)}'
        f"<small>{escape(' · '.join(facts))} &middot; {escape(scores)}{link}</small></div>"
    )


def comment_list(rows: Sequence[CommentRow], labels: Sequence[str]) -> str:
    if not rows:
        return "<p>None.</p>"
    return "\n".join(comment_block(row, labels) for row in rows)


def top_comments(top: dict[str, list[CommentRow]], labels: Sequence[str]) -> str:
    blocks = [
        f"<div><h3>{escape(label)}</h3>{comment_list(top.get(label, []), labels)}</div>"
        for label in labels
    ]
    return f'<div class="columns">{"".join(blocks)}</div>'


def bullet_list(items: Sequence[str], css_class: str) -> str:
    if not items:
        return "<p>None.</p>"
    entries = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f'<ul class="{css_class}">{entries}</ul>'


def source_table(source: Source) -> str:
    """What the comments came from; a URL is shown as text, never as a link to follow."""
    facts: list[tuple[str, Any]] = [("kind", source.kind)]
    if isinstance(source, YouTubeSource):
        video = source.video
        facts += [("video id", video.id), ("video title", video.title),
                  ("video channel", video.channel), ("video url", video.url),
                  ("video comment_count", video.comment_count)]
    if isinstance(source, FileSource):
        facts += [("file", source.file), ("rows", source.rows)]
    shown = [(name, value) for name, value in facts if value is not None]
    return table(["", ""], ([(name, False), (str(value), False)] for name, value in shown))


# --- CSV ---------------------------------------------------------------------------------------


def comments_csv(result: AnalysisResult) -> str:
    """Every comment with its prediction, one row each, in input order.

    Text cells starting with = + - @ (or a tab or carriage return) get a leading ' so that a
    spreadsheet shows them instead of evaluating them (CSV formula injection).
    """
    labels = result.labels
    header = [
        "index", "id", "published_at", "author", "likes", "is_reply", "text", "label",
        "confidence", *(f"p_{label}" for label in labels), "language", "other_language",
    ]
    rows = (
        [
            row.index, row.id, row.published_at, row.author, row.likes, row.is_reply, row.text,
            row.label, row.confidence, *(row.scores[label] for label in labels), row.language,
            row.other_language,
        ]
        for row in result.comments
    )
    return csv_text(header, rows)
