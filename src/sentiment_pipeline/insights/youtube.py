"""A video's comments from the YouTube Data API v3 (videos.list, commentThreads.list)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from sentiment_pipeline.insights.comments import Comment, CommentBatch, YouTubeError
from sentiment_pipeline.insights.youtube_answers import (
    KEY_HINT,
    error_of,
    refusal,
    retry_after_header,
    thread_comments,
    video_facts,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com/youtube/v3"
PAGE_SIZE = 100  # commentThreads.list's largest maxResults
ORDERS = ("time", "relevance")
REPLIES_NOTE = (
    "YouTube's commentThreads.list returns only some of the replies of a thread (up to 5); "
    "top-level comments and those replies were analysed, not every reply"
)
_KEY_PARAM = re.compile(r"(key=)[^&\s'\"]+")


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


class YouTubeClient:
    """Fetches a video's facts and comments; errors are YouTubeError with a distinct kind.

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
        """The video's id, title, channel, comment count and URL; video_not_found if none."""
        body = self._get("videos", {"part": "snippet,statistics", "id": video_id}, video_id)
        return video_facts(video_id, body)

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
                        "youtube_unavailable",
                        f"the YouTube Data API answered {resource} with HTTP "
                        f"{response.status_code} {self._message(response)} "
                        f"{self.retries + 1} times; try again later",
                        retry_after=retry_after_header(response.headers.get("Retry-After")),
                    )
                self._wait(attempt, f"{resource}: HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                _, reasons = error_of(response)
                raise refusal(
                    response.status_code, reasons,
                    f"HTTP {response.status_code} {self._message(response)}",
                    response.headers.get("Retry-After"), resource, video_id,
                )
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
                "youtube_unavailable",
                f"the YouTube Data API answered {resource} with something that is not a JSON "
                f"object (HTTP {response.status_code}, {response.headers.get('Content-Type')}); "
                "check SENTIMENT_PIPELINE_YOUTUBE_BASE_URL",
            )
        return body

    def _message(self, response: requests.Response) -> str:
        """YouTube's own words for an error: its message and reasons, the key redacted."""
        message, reasons = error_of(response)
        said = f"({', '.join(reasons)}: {message})" if reasons else f"({message})"
        return redact(said[:500], self.api_key)


def client_from_settings(settings: Any = None, **options: Any) -> YouTubeClient:
    """A client with the key and base URL of the environment settings (get_settings())."""
    if settings is None:
        from sentiment_pipeline.settings import get_settings

        settings = get_settings()
    key = settings.youtube_api_key.get_secret_value() if settings.youtube_api_key else None
    return YouTubeClient(key, settings.youtube_base_url, **options)
