"""A video's comments from the YouTube Data API v3 (videos.list, commentThreads.list)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from sentiment_pipeline.insights.comments import Comment, CommentBatch, YouTubeError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com/youtube/v3"
PAGE_SIZE = 100  # commentThreads.list's largest maxResults
ORDERS = ("time", "relevance")
REPLIES_NOTE = (
    "YouTube's commentThreads.list returns only some of the replies of a thread (up to 5); "
    "top-level comments and those replies were analysed, not every reply"
)
KEY_HINT = "set SENTIMENT_PIPELINE_YOUTUBE_API_KEY (or YOUTUBE_API_KEY)"

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_HOSTS = {
    "youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
    "youtube-nocookie.com", "www.youtube-nocookie.com",
}
_SHORT_HOSTS = {"youtu.be", "www.youtu.be"}
_PATH_FORMS = ("shorts", "embed", "live", "v", "e")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_KEY_PARAM = re.compile(r"(key=)[^&\s'\"]+")
_QUOTA = {"quotaExceeded", "dailyLimitExceeded"}
_RATE = {"rateLimitExceeded", "userRateLimitExceeded"}
_KEY_REASONS = {
    "keyInvalid", "keyExpired", "forbidden", "accessNotConfigured", "ipRefererBlocked",
    "unauthorized", "authError", "API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED",
    "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED", "SERVICE_DISABLED",
}
_NOT_FOUND = {"videoNotFound", "notFound"}
RATE_RETRY_S = 60.0  # a per-minute rate limit: try again in a minute


def parse_video_id(text: str) -> str:
    """The 11-character video id of a YouTube link or of a bare id; else a 422 naming the input.

    Accepted: watch?v=ID (other query parameters ignored), youtu.be/ID, /shorts/ID, /embed/ID,
    /live/ID, /v/ID on youtube.com and its www., m., music. hosts (and youtube-nocookie.com),
    with or without http(s)://.
    """
    given = text.strip() if isinstance(text, str) else ""
    if _VIDEO_ID.fullmatch(given):
        return given
    found = _id_from_url(given)
    if found is None:
        raise YouTubeError(
            422,
            "bad_video",
            f"{_shown(text)} is not a YouTube video link or id; expected a link such as "
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ, https://youtu.be/dQw4w9WgXcQ or "
            "https://www.youtube.com/shorts/dQw4w9WgXcQ, or the 11-character id itself",
        )
    return found


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}...' ({len(text)} characters)"


def _id_from_url(text: str) -> str | None:
    if not text or any(c.isspace() for c in text):
        return None
    try:
        absolute = text if _SCHEME.match(text) else f"https://{text.removeprefix('//')}"
        parts = urlsplit(absolute)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:  # e.g. a bad port or an unclosed [ in the host
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    candidate = None
    if host in _SHORT_HOSTS:
        candidate = segments[0] if len(segments) == 1 else None
    elif host in _HOSTS:
        if segments == ["watch"]:
            values = parse_qs(parts.query).get("v", [])
            candidate = values[0] if len(values) == 1 else None
        elif len(segments) == 2 and segments[0] in _PATH_FORMS:
            candidate = segments[1]
    if candidate is not None and _VIDEO_ID.fullmatch(candidate):
        return candidate
    return None


def video_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def redact(text: str, key: str | None) -> str:
    """`text` without the API key: the key itself and any `key=` query value."""
    if key:
        text = text.replace(key, "***")
    return _KEY_PARAM.sub(r"\1***", text)


class _RedactKeyFilter(logging.Filter):
    """Keeps `key=` values out of urllib3's debug lines (they hold request URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "key=" in message:
            record.msg, record.args = redact(message, None), ()
        return True


def _guard_urllib3_logs() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactKeyFilter) for f in target.filters):
        target.addFilter(_RedactKeyFilter())


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


class YouTubeClient:
    """Fetches a video's facts and comments; errors are YouTubeError with a distinct reason.

    The API key travels as the `key` query parameter and never appears in an error message.
    5xx answers and network failures are retried `retries` times after `backoff`, 2*`backoff`,
    ... seconds.
    """

    def __init__(
        self,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(retries, 0)
        self.backoff = max(backoff, 0.0)
        self.session = session or requests.Session()
        self.sleep = sleep
        _guard_urllib3_logs()

    def fetch(self, video_id: str, max_comments: int, order: str = "time") -> CommentBatch:
        """Up to `max_comments` comments (replies count too) of a video, newest or top first."""
        if max_comments < 1:
            raise ValueError(f"max_comments must be at least 1, got {max_comments}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if not self.api_key:
            raise YouTubeError(
                503,
                "youtube_not_configured",
                "this machine has no YouTube Data API key, so it cannot fetch comments; "
                f"{KEY_HINT} in the environment of the server (or of the CLI) and restart",
            )
        video = self.video(video_id)
        comments, pages, textless, capped = self._comments(video_id, max_comments, order)
        unparsed = sum(comment.published_at is None for comment in comments)  # a malformed answer
        notes = [REPLIES_NOTE]
        if capped:
            notes.append(
                f"stopped at max_comments={max_comments}: the video has more comments "
                f"(about {video['comment_count']})"
                if video["comment_count"] is not None
                else f"stopped at max_comments={max_comments}: the video has more comments"
            )
        if textless:
            notes.append(f"{textless} comments without text were left out")
        logger.info(
            "fetched %d comments of YouTube video %s in %d pages (order=%s)",
            len(comments), video_id, pages, order,
        )
        return CommentBatch(
            comments=comments,
            source={"kind": "youtube", "video": video},
            unparsed_times=unparsed,
            notes=tuple(notes),
        )

    def video(self, video_id: str) -> dict[str, Any]:
        """The video's id, title, channel, comment count and URL; 404 when it does not exist."""
        body = self._get("videos", {"part": "snippet,statistics", "id": video_id}, video_id)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise _not_found(video_id)
        item = items[0] if isinstance(items[0], Mapping) else {}
        snippet = item.get("snippet") or {}
        statistics = item.get("statistics") or {}
        count = statistics.get("commentCount")
        return {
            "id": video_id,
            "title": snippet.get("title"),
            "channel": snippet.get("channelTitle"),
            "comment_count": _count(count) if count is not None else None,
            "url": video_url(video_id),
        }

    def _comments(
        self, video_id: str, max_comments: int, order: str
    ) -> tuple[list[Comment], int, int, bool]:
        comments: list[Comment] = []
        textless = pages = 0
        token: Any = None
        while True:
            params = {
                "part": "snippet,replies",
                "videoId": video_id,
                "maxResults": str(PAGE_SIZE),
                "order": order,
                "textFormat": "plainText",
            }
            if token:
                params["pageToken"] = token
            body = self._get("commentThreads", params, video_id)
            pages += 1
            for thread in body.get("items") or []:
                for comment in thread_comments(thread) if isinstance(thread, Mapping) else []:
                    if comment is None:
                        textless += 1
                        continue
                    if len(comments) == max_comments:
                        return comments, pages, textless, True
                    comments.append(comment)
            token = body.get("nextPageToken")
            if not isinstance(token, str):
                token = None
            if not token:
                return comments, pages, textless, False
            if len(comments) == max_comments:
                return comments, pages, textless, True

    def _get(self, resource: str, params: dict[str, str], video_id: str) -> dict[str, Any]:
        """One API call, with retries on 5xx and network failures; the parsed JSON body."""
        url = f"{self.base_url}/{resource}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.get(
                    url, params={**params, "key": self.api_key}, timeout=self.timeout
                )
            except requests.RequestException as exc:
                problem = redact(f"{type(exc).__name__}: {exc}", self.api_key)
                if last:
                    raise YouTubeError(
                        502,
                        "youtube_unreachable",
                        f"could not reach the YouTube Data API at {self.base_url} "
                        f"({resource}, {self.retries + 1} tries): {problem}; check this "
                        "machine's network access (or SENTIMENT_PIPELINE_YOUTUBE_BASE_URL)",
                    ) from None
                self._wait(attempt, f"{resource}: {problem}")
                continue
            if response.status_code >= 500:
                if last:
                    raise YouTubeError(
                        503,
                        "youtube_unavailable",
                        f"the YouTube Data API answered {resource} with HTTP "
                        f"{response.status_code} {self._message(response)} "
                        f"{self.retries + 1} times; try again later",
                        retry_after=retry_after_header(response.headers.get("Retry-After")),
                    )
                self._wait(attempt, f"{resource}: HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                raise self._refusal(response, resource, video_id)
            return self._json(response, resource)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _wait(self, attempt: int, why: str) -> None:
        delay = self.backoff * 2**attempt
        logger.warning("YouTube API call failed (%s); retrying in %.1f s", why, delay)
        self.sleep(delay)

    def _json(self, response: requests.Response, resource: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise YouTubeError(
                503,
                "youtube_unavailable",
                f"the YouTube Data API answered {resource} with something that is not a JSON "
                f"object (HTTP {response.status_code}, {response.headers.get('Content-Type')}); "
                "check SENTIMENT_PIPELINE_YOUTUBE_BASE_URL",
            )
        return body

    def _message(self, response: requests.Response) -> str:
        """YouTube's own words for an error: its message and reasons, the key redacted."""
        message, reasons = _error_of(response)
        said = f"({', '.join(reasons)}: {message})" if reasons else f"({message})"
        return redact(said[:500], self.api_key)

    def _refusal(
        self, response: requests.Response, resource: str, video_id: str
    ) -> YouTubeError:
        status = response.status_code
        _, reasons = _error_of(response)
        said = f"HTTP {status} {self._message(response)}"
        found = set(reasons)
        if "commentsDisabled" in found:
            return YouTubeError(
                422,
                "comments_disabled",
                f"comments are turned off for YouTube video {video_id} ({said}); "
                "there is nothing to analyse",
            )
        if found & _NOT_FOUND or (status == 404 and reasons):
            return _not_found(video_id, said)
        if found & (_QUOTA | _RATE) or status == 429:
            header = retry_after_header(response.headers.get("Retry-After"))
            daily = bool(found & _QUOTA)
            wait = header if header is not None else (
                seconds_to_quota_reset() if daily else RATE_RETRY_S
            )
            when = "after midnight Pacific time, when the daily quota resets" if daily else (
                "in a minute"
            )
            return YouTubeError(
                503,
                "youtube_quota",
                f"this server's YouTube Data API quota is spent ({said}); try again {when} "
                f"(in about {wait:.0f} s)",
                retry_after=wait,
            )
        if found & _KEY_REASONS or status in (401, 403) or "API key" in said:
            return YouTubeError(
                502,
                "youtube_key",
                f"YouTube refused this server's API key ({said}); the server's operator must "
                f"{KEY_HINT} to a valid key with the YouTube Data API v3 enabled for its project",
            )
        return YouTubeError(
            502,
            "youtube_error",
            f"the YouTube Data API refused the {resource} request for video {video_id} "
            f"({said})",
        )


def _not_found(video_id: str, said: str = "videos.list found no such video") -> YouTubeError:
    return YouTubeError(
        404,
        "video_not_found",
        f"there is no YouTube video {video_id} ({said}); it may be private or deleted, "
        "or the link is mistyped",
    )


def _error_of(response: requests.Response) -> tuple[str, list[str]]:
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


def client_from_settings(settings: Any = None, **options: Any) -> YouTubeClient:
    """A client with the key and base URL of the environment settings (get_settings())."""
    if settings is None:
        from sentiment_pipeline.settings import get_settings

        settings = get_settings()
    key = settings.youtube_api_key.get_secret_value() if settings.youtube_api_key else None
    return YouTubeClient(key, settings.youtube_base_url, **options)
