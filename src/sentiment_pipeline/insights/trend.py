"""The trend of an analysis: class shares per hour, day, week or month (UTC), empty ones too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from sentiment_pipeline.insights.result import Period, Trend, TrendBucket

HOUR_MAX_SPAN = timedelta(days=2)
DAY_MAX_SPAN = timedelta(days=90)
WEEK_MAX_SPAN = timedelta(days=730)
# Comments are not older than this: earlier times come from a column that holds something else
# (a like count read as seconds since 1970 lands in January 1970; YouTube began in 2005).
EARLIEST = datetime(2005, 1, 1, tzinfo=UTC)
# Nor later than the analysis, give or take a day of clocks and time zones.
FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class TimeCheck:
    """Which comment times the trend may use, and the ones it may not."""

    usable: list[datetime | None]  # per comment: its time, or None when it is left out
    implausible: list[datetime]  # times before EARLIEST or in the future, in input order
    dated: int  # comments with a time at all
    dropped: bool  # most times were implausible: none is used

    @property
    def left_out(self) -> int:
        """Times the trend does not use: the implausible ones, or all when most were."""
        return self.dated if self.dropped else len(self.implausible)


def check_times(times: Sequence[datetime | None], now: datetime) -> TimeCheck:
    """Leave implausible times out of the trend; all of them when they are most of the times,
    since then the column holds something else and the few plausible values are chance."""
    latest = as_utc(now) + FUTURE_SLACK

    def plausible(moment: datetime) -> bool:
        return EARLIEST <= as_utc(moment) <= latest

    dated = [t for t in times if t is not None]
    implausible = [t for t in dated if not plausible(t)]
    dropped = 2 * len(implausible) > len(dated)
    usable = [t if t is not None and not dropped and plausible(t) else None for t in times]
    return TimeCheck(usable=usable, implausible=implausible, dated=len(dated), dropped=dropped)


def choose_period(span: timedelta) -> Period:
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
) -> Trend:
    """Counts and class shares per period; empty periods between the first and last included."""
    dated = [(as_utc(t), int(k)) for t, k in zip(times, predicted, strict=True) if t is not None]
    if not dated:
        return Trend(period=None, buckets=[])
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
            TrendBucket(
                start=iso(start),
                count=total,
                counts={label: found[i] for i, label in enumerate(labels)},
                shares={
                    label: found[i] / total if total else 0.0 for i, label in enumerate(labels)
                },
            )
        )
        start = next_bucket(start, period)
    return Trend(period=period, buckets=buckets)
