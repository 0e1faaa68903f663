"""The comments every source produces, and the errors an analysis can end with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sentiment_pipeline.errors import PipelineError


@dataclass(frozen=True)
class Comment:
    """One comment: its text and what the source knows about it."""

    text: str
    id: str | None = None  # YouTube comment id, or the file row number as str
    author: str | None = None
    published_at: datetime | None = None  # timezone-aware UTC; None if absent/unparseable
    likes: int = 0
    reply_count: int = 0  # replies the thread has (top-level YouTube comments)
    parent_id: str | None = None  # a reply's top-level comment id; None for top-level/file rows


@dataclass(frozen=True)
class CommentBatch:
    """The comments of one source, with where they came from and what to say about them."""

    comments: list[Comment]
    # {"kind": "youtube", "video": {"id", "title", "channel", "comment_count", "url"}}
    # or {"kind": "file", "file": name, "rows": n} or {"kind": "json"}
    source: dict
    unparsed_times: int = 0  # timestamps present but unparseable (left out of the trend)
    notes: tuple[str, ...] = ()  # caveats, e.g. that YouTube returns only some replies


class InsightsError(PipelineError):
    """A known failure of an analysis: an HTTP status, a short reason code and a clear message.

    The server answers ``{"error": message, "error_type": reason}`` with ``status`` (and a
    ``Retry-After`` header when ``retry_after`` is set); the CLI prints the message and exits 1.
    """

    def __init__(
        self, status: int, reason: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    def payload(self) -> dict[str, str]:
        """The JSON body of the error response."""
        return {"error": self.message, "error_type": self.reason}


class YouTubeError(InsightsError):
    """Fetching a video's comments failed (bad video, YouTube refused, unreachable...)."""


class BadFileError(InsightsError):
    """A comments file cannot be read as asked (422 ``bad_file``, or 413 ``too_large``)."""
