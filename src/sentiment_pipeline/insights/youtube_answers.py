"""What the YouTube Data API answers, read: its comments and times, and what a refusal means."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from sentiment_pipeline.insights.comments import Comment, YouTubeError
from sentiment_pipeline.insights.youtube_links import video_url

KEY_HINT = "set SENTIMENT_PIPELINE_YOUTUBE_API_KEY (or YOUTUBE_API_KEY)"
_QUOTA = {"quotaExceeded", "dailyLimitExceeded"}
_RATE = {"rateLimitExceeded", "userRateLimitExceeded"}
_KEY_REASONS = {
    "keyInvalid", "keyExpired", "forbidden", "accessNotConfigured", "ipRefererBlocked",
    "unauthorized", "authError", "API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED",
    "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED", "SERVICE_DISABLED",
}
_NOT_FOUND = {"videoNotFound", "notFound"}
RATE_RETRY_S = 60.0  # a per-minute rate limit: try again in a minute


def seconds_to_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight Pacific time, when YouTube resets the daily quota."""
    now = now or datetime.now(UTC)
    try:
        from zoneinfo import ZoneInfo

        pacific: Any = ZoneInfo("America/Los_Angeles")
    except Exception:  # no time-zone database on the machine: standard time is close enough
        pacific = timezone(timedelta(hours=-8))
    local = now.astimezone(pacific)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), pacific)
    return max((midnight - local).total_seconds(), 1.0)


def retry_after_header(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time of the API (2024-05-01T12:00:00Z) as an aware UTC datetime."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _count(value: object) -> int:
    try:
        return max(int(value), 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _comment(resource: Mapping[str, Any], reply_count: int = 0) -> Comment | None:
    snippet = resource.get("snippet") or {}
    text = snippet.get("textOriginal")
    if not isinstance(text, str):
        text = snippet.get("textDisplay")
    if not isinstance(text, str) or not text.strip():
        return None
    author = snippet.get("authorDisplayName")
    parent = snippet.get("parentId")
    return Comment(
        text=text,
        id=str(resource["id"]) if resource.get("id") is not None else None,
        author=author if isinstance(author, str) else None,
        published_at=parse_time(snippet.get("publishedAt")),
        likes=_count(snippet.get("likeCount")),
        reply_count=reply_count,
        parent_id=parent if isinstance(parent, str) else None,
    )


def thread_comments(thread: Mapping[str, Any]) -> list[Comment | None]:
    """A commentThreads item as its top-level comment then the replies that came with it.

    None stands for a comment without text (kept in place so the caller can count it).
    """
    snippet = thread.get("snippet") or {}
    top = snippet.get("topLevelComment") or {}
    found = [_comment(top, _count(snippet.get("totalReplyCount")))]
    top_id = top.get("id")
    for reply in (thread.get("replies") or {}).get("comments") or []:
        comment = _comment(reply)
        if comment is not None and comment.parent_id is None and top_id is not None:
            comment = replace(comment, parent_id=str(top_id))
        found.append(comment)
    return found


def video_facts(video_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The id, title, channel, comment count and URL of a videos.list answer; not_found if none."""
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise not_found(video_id)
    item = items[0] if isinstance(items[0], Mapping) else {}
    snippet = item.get("snippet") or {}
    statistics = item.get("statistics") or {}
    count = statistics.get("commentCount")
    title, channel = snippet.get("title"), snippet.get("channelTitle")
    return {
        "id": video_id,
        "title": title if isinstance(title, str) else None,
        "channel": channel if isinstance(channel, str) else None,
        "comment_count": _count(count) if count is not None else None,
        "url": video_url(video_id),
    }


def refusal(
    status: int, reasons: list[str], said: str, retry_after: str | None, resource: str,
    video_id: str,
) -> YouTubeError:
    """What a 4xx answer means, from its status and reasons; `said`: YouTube's words for it.

    retry_after: the answer's Retry-After header, if any.
    """
    found = set(reasons)
    if "commentsDisabled" in found:
        return YouTubeError(
            "comments_disabled",
            f"comments are turned off for YouTube video {video_id} ({said}); "
            "there is nothing to analyse",
        )
    if found & _NOT_FOUND or (status == 404 and reasons):
        return not_found(video_id, said)
    if found & (_QUOTA | _RATE) or status == 429:
        header = retry_after_header(retry_after)
        daily = bool(found & _QUOTA)
        wait = header if header is not None else (
            seconds_to_quota_reset() if daily else RATE_RETRY_S
        )
        when = "after midnight Pacific time, when the daily quota resets" if daily else (
            "in a minute"
        )
        return YouTubeError(
            "youtube_quota",
            f"this server's YouTube Data API quota is spent ({said}); try again {when} "
            f"(in about {wait:.0f} s)",
            retry_after=wait,
        )
    if found & _KEY_REASONS or status in (401, 403) or "API key" in said:
        return YouTubeError(
            "youtube_key",
            f"YouTube refused this server's API key ({said}); the server's operator must "
            f"{KEY_HINT} to a valid key with the YouTube Data API v3 enabled for its project",
        )
    return YouTubeError(
        "youtube_error",
        f"the YouTube Data API refused the {resource} request for video {video_id} "
        f"({said})",
    )


def not_found(video_id: str, said: str = "videos.list found no such video") -> YouTubeError:
    """The refusal of a video that does not exist (or that this key may not see)."""
    return YouTubeError(
        "video_not_found",
        f"there is no YouTube video {video_id} ({said}); it may be private or deleted, "
        "or the link is mistyped",
    )


def error_of(response: requests.Response) -> tuple[str, list[str]]:
    """The message and reasons of a Google API error body (`error.errors[].reason`)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no error body", []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return response.reason or "no error body", []
    reasons = [
        str(item["reason"])
        for item in error.get("errors") or []
        if isinstance(item, dict) and item.get("reason")
    ]
    reasons += [
        str(item["reason"])
        for item in error.get("details") or []
        if isinstance(item, dict) and item.get("reason") and str(item["reason"]) not in reasons
    ]
    return str(error.get("message") or response.reason or ""), reasons
