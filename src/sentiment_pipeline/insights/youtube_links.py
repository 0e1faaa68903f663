"""YouTube links: the video id of a link (or of a bare id); a video's and a comment's link."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

from sentiment_pipeline.insights.comments import YouTubeError

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_HOSTS = {
    "youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
    "youtube-nocookie.com", "www.youtube-nocookie.com",
}
_SHORT_HOSTS = {"youtu.be", "www.youtu.be"}
_PATH_FORMS = ("shorts", "embed", "live", "v", "e")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def parse_video_id(text: str) -> str:
    """The 11-character video id of a YouTube link or of a bare id; else bad_video naming it.

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


def comment_url(video_id: str, comment_id: str) -> str:
    """The link that opens a video with one of its comments (a reply too) highlighted."""
    return f"{video_url(video_id)}&lc={quote(comment_id, safe='')}"
