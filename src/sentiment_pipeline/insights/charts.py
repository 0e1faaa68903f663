"""The analysis charts as SVG text (matplotlib, object-oriented: no pyplot state, thread-safe).

Comment words and class names become chart text, so every text is drawn with mathtext and TeX
off: a `$` in a comment is a dollar sign, never a parse error.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from sentiment_pipeline.insights.result import (
    AnalysisResult,
    AspectResult,
    BreakdownRow,
    Charts,
    Term,
    Trend,
)

PLAIN = {"parse_math": False, "usetex": False}  # text drawn as written
NAMED_COLOURS = {"negative": "#d1495b", "neutral": "#8d99ae", "positive": "#2a9d8f"}
PALETTE = ["#264653", "#e9c46a", "#f4a261", "#6a4c93", "#1982c4", "#8ac926", "#ff595e"]
PERIOD_WIDTH = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
}
DATE_FORMAT = {"hour": "%d %b %H:00", "day": "%d %b %Y", "week": "%d %b %Y", "month": "%b %Y"}
MAX_DATE_TICKS = 8
MAX_COUNT_LABELS = 40  # periods whose comment counts are written above their bars
FAINTEST = 0.2  # opacity of a period's share bar with (almost) no comments


def render_charts(result: AnalysisResult) -> Charts:
    """The breakdown, trend and terms charts of an analysis result (and the aspects', when
    there are aspects), as SVG documents."""
    colours = label_colours(result.labels)
    return Charts(
        breakdown=breakdown_chart(result.breakdown, colours),
        trend=trend_chart(result.trend, result.labels, colours),
        terms=terms_chart(result.terms, result.labels, colours),
        aspects=aspects_chart(result.aspects) if result.aspects else None,
    )


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per class: red/grey/green for negative/neutral/positive, a palette otherwise."""
    spare = iter(PALETTE * (len(labels) // len(PALETTE) + 1))
    return {label: NAMED_COLOURS.get(label.lower()) or next(spare) for label in labels}


def to_svg(figure: Figure) -> str:
    """The figure as an SVG document (no timestamp in it)."""
    buffer = io.StringIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return buffer.getvalue()


def plain_legend(axes: Axes, **options: Any) -> None:
    """A legend whose entries (class names) are drawn as plain text."""
    legend = axes.legend(**options)
    for text in legend.get_texts():
        text.set_parse_math(False)
        text.set_usetex(False)
    for handle in legend.legend_handles:  # not the first bar's opacity
        handle.set_alpha(1)


def label_rows(axes: Axes, names: Sequence[str], x: float = -0.02) -> None:
    """Category names left of a horizontal bar chart, as plain text (not tick labels, which
    matplotlib may rebuild without their parse_math setting)."""
    axes.set_yticks(range(len(names)), labels=[""] * len(names))
    transform = axes.get_yaxis_transform()
    for row, name in enumerate(names):
        axes.text(x, row, name, transform=transform, ha="right", va="center", **PLAIN)


def breakdown_chart(rows: Sequence[BreakdownRow], colours: dict[str, str]) -> str:
    """Horizontal bars of each class's share, with its 95 % interval and its count."""
    figure = Figure(figsize=(6.4, 0.6 + 0.55 * max(len(rows), 1)), layout="constrained")
    axes = figure.add_subplot()
    names = [r.label for r in rows]
    shares = [r.share for r in rows]
    errors = [
        [max(r.share - r.ci_low, 0) for r in rows],
        [max(r.ci_high - r.share, 0) for r in rows],
    ]
    axes.barh(
        range(len(rows)), shares, xerr=errors, capsize=4, ecolor="#333333",
        color=[colours[n] for n in names],
    )
    for row, r in enumerate(rows):
        axes.text(
            min(r.ci_high, 0.86) + 0.01, row, f"{r.share:.0%} ({r.count})",
            va="center", **PLAIN,
        )
    label_rows(axes, names)
    axes.set_xlim(0, 1)
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    axes.set_title("Share of comments per sentiment, with its likely range", **PLAIN)
    axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure)


def period_opacity(counts: Sequence[int]) -> list[float]:
    """How strongly each period's share bar is drawn, from FAINTEST up: a day of one comment,
    at 100 % of one class, must not outweigh days of hundreds. A share's uncertainty shrinks
    with the square root of its comments, so the opacity grows with sqrt(count / busiest)."""
    busiest = max(counts, default=0)
    return [FAINTEST + (1 - FAINTEST) * math.sqrt(count / busiest) if busiest else FAINTEST
            for count in counts]


def trend_chart(trend: Trend, labels: Sequence[str], colours: dict[str, str]) -> str:
    """Class shares per period stacked to 100 %, drawn as strongly as the period has comments
    (with their count above), over the number of comments per period."""
    figure = Figure(figsize=(8, 4.8), layout="constrained")
    buckets = trend.buckets
    if not buckets:
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.text(0.5, 0.5, "No dated comments: no trend", ha="center", va="center", **PLAIN)
        return to_svg(figure)
    shares_axes, count_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    starts = [datetime.fromisoformat(b.start.replace("Z", "+00:00")) for b in buckets]
    width = PERIOD_WIDTH[trend.period] * 0.85
    opacity = period_opacity([b.count for b in buckets])
    bottom = [0.0] * len(buckets)
    for k, label in enumerate(labels):
        heights = [b.shares[label] for b in buckets]
        bars = shares_axes.bar(
            starts, heights, width=width, bottom=bottom, align="edge", color=colours[label],
            label=label,
        )
        for i, bar in enumerate(bars):
            bar.set_alpha(opacity[i])
            bar.set_gid(f"share-{i}-{k}")
        bottom = [low + h for low, h in zip(bottom, heights, strict=True)]
    if len(buckets) <= MAX_COUNT_LABELS:
        for start, bucket in zip(starts, buckets, strict=True):
            shares_axes.text(start + width / 2, 1.01, f"{bucket.count:,}", ha="center",
                             va="bottom", fontsize=7, color="#555555", **PLAIN)
    shares_axes.set_ylim(0, 1.08)
    shares_axes.set_yticks([0, 0.25, 0.5, 0.75, 1])
    shares_axes.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    shares_axes.set_title(
        f"Sentiment per {trend.period} (UTC); paler bars rest on fewer comments", **PLAIN
    )
    plain_legend(shares_axes, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    count_axes.bar(
        starts, [b.count for b in buckets], width=width, align="edge", color="#555555"
    )
    count_axes.set_ylabel("comments", **PLAIN)
    date_ticks(count_axes, starts, trend.period)
    for axes in (shares_axes, count_axes):
        axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure)


def date_ticks(axes: Axes, starts: Sequence[datetime], period: str) -> None:
    """At most MAX_DATE_TICKS bucket starts as x tick labels, in the period's date format."""
    step = max(1, -(-len(starts) // MAX_DATE_TICKS))
    chosen = list(starts[::step])
    axes.set_xticks(chosen, labels=[s.strftime(DATE_FORMAT[period]) for s in chosen])
    for tick in axes.get_xticklabels():
        tick.set_rotation(30)
        tick.set_horizontalalignment("right")


def terms_chart(
    terms: dict[str, list[Term]], labels: Sequence[str], colours: dict[str, str]
) -> str:
    """One panel per class: its most distinctive terms by log-odds z-score (the report's
    footnote says what that is)."""
    longest = max((len(terms.get(label, [])) for label in labels), default=0)
    figure = Figure(
        figsize=(3.4 * max(len(labels), 1), 1.2 + 0.32 * max(longest, 3)), layout="constrained"
    )
    panels = figure.subplots(1, max(len(labels), 1), squeeze=False)[0]
    for axes, label in zip(panels, labels, strict=False):
        rows = list(terms.get(label, []))
        axes.set_title(label, color=colours[label], **PLAIN)
        axes.spines[["top", "right"]].set_visible(False)
        if not rows:
            axes.set_yticks([])
            axes.text(0.5, 0.5, "no distinctive terms", ha="center", va="center",
                      transform=axes.transAxes, **PLAIN)
            continue
        axes.barh(range(len(rows)), [r.z for r in rows], color=colours[label])
        label_rows(axes, [r.term for r in rows])
        axes.invert_yaxis()
        axes.set_xlabel("how distinctive", **PLAIN)
    figure.suptitle("Words that set each sentiment apart", **PLAIN)
    return to_svg(figure)


def aspects_chart(aspects: Sequence[AspectResult]) -> str:
    """The aspects from the best liked to the least, each at its net sentiment (positive share
    minus negative share) with its 95 % interval, and its number of mentions."""
    ranked = sorted(aspects, key=lambda a: (-a.net.value, -a.count, a.name))
    figure = Figure(figsize=(6.4, 0.9 + 0.45 * max(len(ranked), 1)), layout="constrained")
    axes = figure.add_subplot()
    values = [a.net.value for a in ranked]
    errors = [
        [max(a.net.value - a.net.ci_low, 0) for a in ranked],
        [max(a.net.ci_high - a.net.value, 0) for a in ranked],
    ]
    colours = [NAMED_COLOURS["positive" if v > 0 else "negative" if v < 0 else "neutral"]
               for v in values]
    axes.barh(range(len(ranked)), values, xerr=errors, capsize=4, ecolor="#333333",
              color=[c if a.count else "#dddddd" for c, a in zip(colours, ranked, strict=True)])
    for row, aspect in enumerate(ranked):
        axes.text(1.02, row, f"{aspect.count:,}", transform=axes.get_yaxis_transform(),
                  va="center", fontsize=8, color="#555555", **PLAIN)
    label_rows(axes, [f"{a.name} *" if a.discovered else a.name for a in ranked])
    axes.axvline(0, color="#333333", linewidth=0.8)
    axes.set_xlim(-1, 1)
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    axes.set_xlabel("net sentiment: positive share minus negative share (* discovered; right: "
                    "comments)", **PLAIN)
    axes.set_title("Aspects by net sentiment, with its likely range", **PLAIN)
    axes.spines[["top", "right"]].set_visible(False)
    return to_svg(figure)
