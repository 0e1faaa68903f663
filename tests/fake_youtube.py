"""A local fake of the YouTube Data API v3 (videos.list, commentThreads.list) on 127.0.0.1.

Bodies follow the public API reference (developers.google.com/youtube/v3/docs): commentThreads
items hold snippet.topLevelComment.snippet.{textOriginal, textDisplay, authorDisplayName,
likeCount, publishedAt}, snippet.totalReplyCount, replies.comments; pages end with
nextPageToken; errors are {"error": {"code", "message", "errors": [{"reason", "domain",
"message"}]}}.

    with FakeYouTube(videos={"dQw4w9WgXcQ": FakeVideo(threads=[thread("c1", "great")])}) as yt:
        client = YouTubeClient(yt.key, yt.url)     # or SENTIMENT_PIPELINE_YOUTUBE_BASE_URL=yt.url
        yt.fail("commentThreads", 503)             # the next commentThreads call answers 503
        yt.requests                                # [(resource, {param: value}), ...]
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "fake-key-3f9a7c"
ERROR_MESSAGES = {
    "commentsDisabled": "The video identified by the <code><a href=\"/youtube/v3/docs/"
    "commentThreads/list#videoId\">videoId</a></code> parameter has disabled comments.",
    "videoNotFound": "The video identified by the <code><a href=\"/youtube/v3/docs/"
    "commentThreads/list#videoId\">videoId</a></code> parameter could not be found.",
    "quotaExceeded": "The request cannot be completed because you have exceeded your "
    "<a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
    "rateLimitExceeded": "The request cannot be completed because you have exceeded your "
    "rate limit.",
    "keyInvalid": "Bad Request",
    "badRequest": "API key not valid. Please pass a valid API key.",
    "forbidden": "The request is missing a valid API key.",
    "backendError": "Backend Error",
    "invalidPageToken": "The request specifies an invalid page token.",
}
DOMAINS = {"quotaExceeded": "youtube.quota", "rateLimitExceeded": "youtube.quota"}


def comment_resource(
    comment_id: str,
    text: str,
    *,
    author: str = "viewer",
    likes: int = 0,
    published: str = "2024-05-01T12:00:00Z",
    parent_id: str | None = None,
    video_id: str = "",
) -> dict[str, Any]:
    """A `youtube#comment` resource as the API returns it with textFormat=plainText."""
    snippet: dict[str, Any] = {
        "channelId": "UCfakechannel0000000000",
        "videoId": video_id,
        "textDisplay": text,
        "textOriginal": text,
        "authorDisplayName": author,
        "authorProfileImageUrl": "https://yt3.ggpht.com/fake",
        "authorChannelUrl": f"http://www.youtube.com/@{author}",
        "canRate": True,
        "viewerRating": "none",
        "likeCount": likes,
        "publishedAt": published,
        "updatedAt": published,
    }
    if parent_id is not None:
        snippet["parentId"] = parent_id
    return {"kind": "youtube#comment", "etag": f"e-{comment_id}", "id": comment_id,
            "snippet": snippet}


def thread(
    comment_id: str,
    text: str,
    *,
    author: str = "viewer",
    likes: int = 0,
    published: str = "2024-05-01T12:00:00Z",
    replies: list[dict[str, Any]] | None = None,
    total_replies: int | None = None,
) -> dict[str, Any]:
    """A `youtube#commentThread`; `replies` are comment_resource()s (their parent is set here)."""
    replies = [
        {**reply, "snippet": {**reply["snippet"], "parentId": comment_id}}
        for reply in replies or []
    ]
    item: dict[str, Any] = {
        "kind": "youtube#commentThread",
        "etag": f"t-{comment_id}",
        "id": comment_id,
        "snippet": {
            "channelId": "UCfakechannel0000000000",
            "videoId": "",
            "topLevelComment": comment_resource(
                comment_id, text, author=author, likes=likes, published=published
            ),
            "canReply": True,
            "totalReplyCount": len(replies) if total_replies is None else total_replies,
            "isPublic": True,
        },
    }
    if replies:
        item["replies"] = {"comments": replies}
    return item


def error_body(status: int, reason: str, message: str | None = None) -> dict[str, Any]:
    message = message or ERROR_MESSAGES.get(reason, reason)
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [
                {"message": message, "domain": DOMAINS.get(reason, "youtube.commentThread"),
                 "reason": reason}
            ],
        }
    }


@dataclass
class FakeVideo:
    title: str = "A fake video"
    channel: str = "Fake channel"
    threads: list[dict[str, Any]] = field(default_factory=list)
    comments_disabled: bool = False
    comment_count: int | None = None  # statistics.commentCount; None: threads + replies


@dataclass
class Scripted:
    """An answer given instead of the real one: a status and body, or a dropped connection."""

    status: int = 500
    body: Any = None  # dict -> JSON, str -> text, None -> an error body for `reason`
    reason: str = "backendError"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a client timeout)
    drop: bool = False  # close the connection without an answer


class FakeYouTube:
    """The fake API; `page_size` caps threads per page below maxResults to test paging cheaply."""

    def __init__(
        self,
        videos: dict[str, FakeVideo] | None = None,
        *,
        key: str = API_KEY,
        page_size: int | None = None,
    ) -> None:
        self.videos = dict(videos or {})
        self.key = key
        self.page_size = page_size
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.raw_paths: list[str] = []
        self._scripted: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self.url = ""

    # --- scripting -----------------------------------------------------------------------
    def fail(self, resource: str, status: int = 500, reason: str | None = None, *,
             times: int = 1, **options: Any) -> None:
        """The next `times` calls of `resource` ("videos", "commentThreads") answer this."""
        answer = Scripted(status=status, reason=reason or _default_reason(status), **options)
        with self._lock:
            self._scripted.setdefault(resource, []).extend([answer] * times)

    def calls(self, resource: str) -> list[dict[str, str]]:
        return [params for name, params in self.requests if name == resource]

    # --- lifetime ------------------------------------------------------------------------
    def __enter__(self) -> FakeYouTube:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, *args: object) -> None:  # keep the test output quiet
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/youtube/v3"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- the API -------------------------------------------------------------------------
    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        resource = parts.path.rsplit("/", 1)[-1]
        params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((resource, params))
            self.raw_paths.append(handler.path)
            queue = self._scripted.get(resource) or []
            scripted = queue.pop(0) if queue else None
        if scripted is not None:
            self._scripted_answer(handler, scripted)
            return
        if not parts.path.startswith("/youtube/v3/") or resource not in (
            "videos", "commentThreads"
        ):
            _send(handler, 404, "<html>Not Found</html>", content_type="text/html")
            return
        if "key" not in params:
            _send(handler, 403, error_body(403, "forbidden"))
            return
        if params["key"] != self.key:
            body = error_body(400, "badRequest")
            body["error"]["status"] = "INVALID_ARGUMENT"
            body["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}
            ]
            _send(handler, 400, body)
            return
        if resource == "videos":
            _send(handler, 200, self._videos(params))
        else:
            status, body = self._threads(params)
            _send(handler, status, body)

    def _scripted_answer(
        self, handler: http.server.BaseHTTPRequestHandler, answer: Scripted
    ) -> None:
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop:
            handler.close_connection = True
            handler.connection.shutdown(2)  # no status line: the client sees a dropped connection
            return
        body = answer.body if answer.body is not None else error_body(answer.status, answer.reason)
        _send(handler, answer.status, body, headers=answer.headers)

    def _videos(self, params: dict[str, str]) -> dict[str, Any]:
        items = []
        for video_id in params.get("id", "").split(","):
            video = self.videos.get(video_id)
            if video is None:
                continue
            count = video.comment_count
            if count is None:
                count = sum(1 + t["snippet"]["totalReplyCount"] for t in video.threads)
            statistics = {"viewCount": "1000", "likeCount": "10", "favoriteCount": "0"}
            if not video.comments_disabled:
                statistics["commentCount"] = str(count)
            items.append({
                "kind": "youtube#video",
                "etag": f"v-{video_id}",
                "id": video_id,
                "snippet": {"title": video.title, "channelTitle": video.channel,
                            "publishedAt": "2024-04-30T10:00:00Z"},
                "statistics": statistics,
            })
        return {"kind": "youtube#videoListResponse", "etag": "list",
                "items": items, "pageInfo": {"totalResults": len(items),
                                             "resultsPerPage": len(items)}}

    def _threads(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        video = self.videos.get(params.get("videoId", ""))
        if video is None:
            return 404, error_body(404, "videoNotFound")
        if video.comments_disabled:
            return 403, error_body(403, "commentsDisabled")
        threads = list(video.threads)
        if params.get("order", "time") == "relevance":
            threads.sort(key=lambda t: -t["snippet"]["topLevelComment"]["snippet"]["likeCount"])
        else:
            threads.sort(key=lambda t: t["snippet"]["topLevelComment"]["snippet"]["publishedAt"],
                         reverse=True)
        size = min(int(params.get("maxResults", "20")), 100)
        size = min(size, self.page_size or size)
        token = params.get("pageToken")
        try:
            start = int(token.removeprefix("page-")) if token else 0
        except ValueError:
            return 400, error_body(400, "invalidPageToken")
        page = threads[start : start + size]
        body: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse",
            "etag": f"page-{start}",
            "pageInfo": {"totalResults": len(page), "resultsPerPage": size},
            "items": page,
        }
        if start + size < len(threads):
            body["nextPageToken"] = f"page-{start + size}"
        return 200, body


def _default_reason(status: int) -> str:
    return {403: "forbidden", 404: "videoNotFound", 400: "badRequest"}.get(status, "backendError")


def _send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: Any,
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A JSON body (dict) or a text body (str), with its length: the connection stays open."""
    text = isinstance(body, str)
    data = (body if text else json.dumps(body)).encode("utf-8")
    handler.send_response(status)
    json_type = "application/json; charset=UTF-8"
    handler.send_header("Content-Type", content_type or ("text/plain" if text else json_type))
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
