"""Figures and times in the words a reader uses: '1 like', '7 Dec 2026, 14:05 UTC'."""

from __future__ import annotations

from datetime import UTC, datetime


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 like', '2 likes', '1,200 replies' (`many`: the plural when it is not noun + s)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def readable_time(moment: datetime | str) -> str:
    """A time as people write it, in UTC: '7 Dec 2026, 14:05 UTC' (ISO 8601 text too)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def cut(text: str | None, max_chars: int) -> str | None:
    """`text` as an answer shows it: at most `max_chars` characters, then '…' when cut."""
    return text if text is None or len(text) <= max_chars else f"{text[:max_chars]}…"
