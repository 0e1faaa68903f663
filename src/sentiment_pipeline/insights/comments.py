"""The comments every source produces, and the errors an analysis can end with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sentiment_pipeline.errors import PipelineError

# A character Python's str.strip() keeps (the readers skip a text without one as blank),
# written out so that every JSON Schema regex engine agrees with not_blank.
NOT_BLANK = "[^\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def not_blank(text: str) -> str:
    """`text`, if it has a character other than white space (the schema's NOT_BLANK)."""
    if not text.strip():
        raise ValueError("the text is blank; send a text with a character other than spaces")
    return text


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


# Why an analysis could not be done; serving maps each kind to an HTTP status in one table.
ErrorKind = Literal[
    "bad_request",  # a request option out of range (max_comments)
    "bad_file",  # a comments file that cannot be read as asked
    "too_large",  # more comments or bytes than one analysis may hold
    "bad_video",  # not a YouTube link or video id
    "video_not_found",  # no such video (private, deleted, mistyped)
    "comments_disabled",  # the video's comments are turned off
    "youtube_not_configured",  # this machine has no YouTube Data API key
    "youtube_key",  # YouTube refused the key
    "youtube_quota",  # the key's quota or rate is spent (retry_after says when to retry)
    "youtube_unavailable",  # YouTube answered 5xx or nonsense
    "youtube_unreachable",  # the network failed
    "youtube_error",  # another refusal of YouTube's
    "no_aspect_model",  # aspects asked for, and no aspect (pair) model to read them
]


class InsightsError(PipelineError):
    """A known failure of an analysis: its kind, a clear message, and when to retry if known.

    The server answers ``{"error": message, "error_type": kind}`` with the kind's status (and
    a ``Retry-After`` header when ``retry_after`` is set); the CLI prints the message, exits 1.
    `setting`: the configuration key behind a limit. The message speaks to whoever sent the
    comments (a browser user cannot edit the server's params.yaml); the setting is for whoever
    runs the analysis: the CLI's message (str) and the server's log name it.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        retry_after: float | None = None,
        setting: str | None = None,
    ) -> None:
        where = f" (the limit is {setting} in params.yaml)" if setting else ""
        super().__init__(message + where)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.setting = setting


class YouTubeError(InsightsError):
    """Fetching a video's comments failed (bad video, YouTube refused, unreachable...)."""


class BadFileError(InsightsError):
    """A comments file cannot be read as asked (``bad_file``, or ``too_large``)."""
