"""The YouTube client against a local fake of the YouTube Data API v3 (tests/fake_youtube.py)."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

import pytest

from fake_youtube import API_KEY, FakeVideo, FakeYouTube, comment_resource, thread
from sentiment_pipeline.insights.comments import InsightsError
from sentiment_pipeline.insights.youtube import REPLIES_NOTE, YouTubeClient, client_from_settings
from sentiment_pipeline.insights.youtube_answers import seconds_to_quota_reset
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.errors import INSIGHTS_STATUS

VIDEO = "dQw4w9WgXcQ"


def _threads(n: int, replies_every: int = 0) -> list[dict]:
    """`n` threads, newest first by time (c0 newest); every `replies_every`-th has 2 replies."""
    found = []
    for i in range(n):
        replies = []
        if replies_every and i % replies_every == 0:
            replies = [comment_resource(f"c{i}.r{j}", f"reply {j} to {i}", likes=j)
                       for j in range(2)]
        found.append(thread(
            f"c{i}", f"comment {i}", author=f"user{i}", likes=10 * i,
            published=f"2024-05-{28 - i:02d}T12:00:00Z", replies=replies,
        ))
    return found


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fake():
    videos = {
        VIDEO: FakeVideo(title="Song", channel="Rick", threads=_threads(5, replies_every=2)),
        "disabled000": FakeVideo(comments_disabled=True),
    }
    with FakeYouTube(videos=videos, page_size=2) as server:
        yield server


def _client(fake: FakeYouTube, sleeps: list[float], **options) -> YouTubeClient:
    defaults = {"timeout": 2.0, "retries": 2, "backoff": 0.5, "sleep": sleeps.append}
    return YouTubeClient(options.pop("key", fake.key), fake.url, **{**defaults, **options})


def _fails(client: YouTubeClient, video: str = VIDEO, **kwargs) -> InsightsError:
    with pytest.raises(InsightsError) as caught:
        client.fetch(video, kwargs.pop("max_comments", 100), **kwargs)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in caught.value.message
    return caught.value


def test_fetches_every_page_with_replies_and_facts(fake, sleeps):
    batch = _client(fake, sleeps).fetch(VIDEO, 100)

    # c0, c2, c4 carry two replies each, listed right after their thread's top comment.
    assert [c.id for c in batch.comments] == [
        "c0", "c0.r0", "c0.r1", "c1", "c2", "c2.r0", "c2.r1", "c3", "c4", "c4.r0", "c4.r1"
    ]
    first, reply = batch.comments[0], batch.comments[1]
    assert (first.text, first.author, first.likes, first.reply_count) == ("comment 0", "user0",
                                                                          0, 2)
    assert first.published_at == datetime(2024, 5, 28, 12, tzinfo=UTC)
    assert first.parent_id is None
    assert (reply.text, reply.parent_id, reply.reply_count) == ("reply 0 to 0", "c0", 0)
    assert batch.comments[3].likes == 10
    assert batch.source == {
        "kind": "youtube",
        "video": {"id": VIDEO, "title": "Song", "channel": "Rick", "comment_count": 11,
                  "url": f"https://www.youtube.com/watch?v={VIDEO}"},
    }
    assert batch.unparsed_times == 0
    assert REPLIES_NOTE in batch.notes
    assert len(fake.calls("commentThreads")) == 3
    assert sleeps == []


def test_sends_the_documented_parameters(fake, sleeps):
    _client(fake, sleeps).fetch(VIDEO, 100, order="relevance")

    assert fake.calls("videos") == [{"part": "snippet,statistics", "id": VIDEO, "key": API_KEY}]
    pages = fake.calls("commentThreads")
    expected = {"part": "snippet,replies", "videoId": VIDEO, "maxResults": "100",
                "order": "relevance", "textFormat": "plainText", "key": API_KEY}
    assert pages[0] == expected
    assert pages[1] == {**expected, "pageToken": "page-2"}
    assert pages[2] == {**expected, "pageToken": "page-4"}


def test_relevance_order_is_the_apis(fake, sleeps):
    batch = _client(fake, sleeps).fetch(VIDEO, 1, order="relevance")
    assert [c.id for c in batch.comments] == ["c4"]  # most liked first, as the fake sorts


@pytest.mark.parametrize(
    ("cap", "ids", "pages"),
    [
        (1, ["c0"], 1),
        (2, ["c0", "c0.r0"], 1),  # stops inside a thread's replies
        (4, ["c0", "c0.r0", "c0.r1", "c1"], 1),  # exactly one page: no second request
        (5, ["c0", "c0.r0", "c0.r1", "c1", "c2"], 2),  # stops mid-page
        (11, None, 3),
    ],
)
def test_max_comments_counts_replies_and_is_exact(fake, sleeps, cap, ids, pages):
    batch = _client(fake, sleeps).fetch(VIDEO, cap)

    assert len(batch.comments) == cap
    if ids is not None:
        assert [c.id for c in batch.comments] == ids
    assert len(fake.calls("commentThreads")) == pages
    capped = [note for note in batch.notes if "max_comments" in note]
    assert capped == ([] if cap == 11 else [
        f"stopped at max_comments={cap}: the video has more comments (about 11)"
    ])


def test_a_video_that_does_not_exist_is_404_without_fetching_comments(fake, sleeps):
    error = _fails(_client(fake, sleeps), "nosuchvideo")
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (404, "video_not_found")
    assert "nosuchvideo" in error.message
    assert fake.calls("commentThreads") == []


def test_comment_threads_video_not_found_is_404(fake, sleeps):
    fake.fail("commentThreads", 404, "videoNotFound")
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (404, "video_not_found")
    assert "videoNotFound" in error.message


def test_comments_disabled_is_422(fake, sleeps):
    error = _fails(_client(fake, sleeps), "disabled000")
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (422, "comments_disabled")
    assert "disabled000" in error.message and "commentsDisabled" in error.message


def test_quota_exceeded_is_503_with_seconds_to_pacific_midnight(fake, sleeps):
    fake.fail("commentThreads", 403, "quotaExceeded")
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (503, "youtube_quota")
    assert 0 < error.retry_after <= 25 * 3600
    assert abs(error.retry_after - seconds_to_quota_reset()) < 60
    assert "quota" in error.message and "midnight Pacific" in error.message
    assert sleeps == []  # a spent quota is not retried


def test_quota_uses_the_apis_retry_after_when_sent(fake, sleeps):
    fake.fail("videos", 403, "quotaExceeded", headers={"Retry-After": "120"})
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind, error.retry_after) == (
        503, "youtube_quota", 120.0
    )


def test_rate_limit_is_503_retry_in_a_minute(fake, sleeps):
    fake.fail("commentThreads", 403, "rateLimitExceeded")
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind, error.retry_after) == (
        503, "youtube_quota", 60.0
    )


def test_pacific_midnight_is_computed_in_los_angeles_time():
    # 2024-07-01 06:00 UTC is 23:00 PDT: one hour to the reset.
    assert seconds_to_quota_reset(datetime(2024, 7, 1, 6, tzinfo=UTC)) == 3600
    # 2024-01-15 07:30 UTC is 23:30 PST.
    assert seconds_to_quota_reset(datetime(2024, 1, 15, 7, 30, tzinfo=UTC)) == 1800


def test_a_wrong_key_is_502_and_never_shown(fake, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "AIzaSy-this-is-the-real-secret"
    error = _fails(_client(fake, sleeps, key=secret))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (502, "youtube_key")
    assert "API key not valid" in error.message
    assert secret not in error.message and secret not in caplog.text
    assert fake.calls("videos")[0]["key"] == secret  # sent, as the API wants, as `key`


@pytest.mark.parametrize(
    ("status", "reason"), [(400, "keyInvalid"), (403, "forbidden"), (403, "accessNotConfigured")]
)
def test_a_refused_key_is_502(fake, sleeps, status, reason):
    fake.fail("commentThreads", status, reason)
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (502, "youtube_key")
    assert reason in error.message and "SENTIMENT_PIPELINE_YOUTUBE_API_KEY" in error.message


def test_no_key_is_503_not_configured_without_a_request(fake, sleeps):
    error = _fails(_client(fake, sleeps, key=None))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (503, "youtube_not_configured")
    assert "SENTIMENT_PIPELINE_YOUTUBE_API_KEY" in error.message
    assert fake.requests == []


def test_a_503_is_retried_and_then_succeeds(fake, sleeps):
    fake.fail("commentThreads", 503)
    batch = _client(fake, sleeps).fetch(VIDEO, 100)
    assert len(batch.comments) == 11
    assert sleeps == [0.5]
    first_page = fake.calls("commentThreads")[:2]
    assert first_page[0] == first_page[1]  # the same page asked again


def test_5xx_every_time_is_503_unavailable_after_exponential_backoff(fake, sleeps):
    fake.fail("videos", 500, times=3)
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (503, "youtube_unavailable")
    assert "HTTP 500" in error.message and "3 times" in error.message
    assert sleeps == [0.5, 1.0]
    assert len(fake.calls("videos")) == 3


def test_retries_and_backoff_are_configurable(fake, sleeps):
    fake.fail("videos", 502, times=4)
    error = _fails(_client(fake, sleeps, retries=3, backoff=0.25))
    assert error.kind == "youtube_unavailable"
    assert sleeps == [0.25, 0.5, 1.0]


def test_a_dropped_connection_is_retried_then_502_unreachable(fake, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    fake.fail("videos", drop=True, times=3)
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (502, "youtube_unreachable")
    assert "3 tries" in error.message
    assert len(fake.calls("videos")) == 3
    assert API_KEY not in caplog.text


def test_a_dropped_connection_once_is_survived(fake, sleeps):
    fake.fail("commentThreads", drop=True)
    assert len(_client(fake, sleeps).fetch(VIDEO, 100).comments) == 11
    assert sleeps == [0.5]


def test_a_timeout_is_502_unreachable(fake, sleeps):
    fake.fail("videos", 200, delay=1.0, times=2)
    error = _fails(_client(fake, sleeps, timeout=0.2, retries=1))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (502, "youtube_unreachable")
    assert "Timeout" in error.message


def test_nothing_listening_is_502_unreachable_and_the_url_is_redacted(sleeps):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = YouTubeClient(API_KEY, f"http://127.0.0.1:{port}/youtube/v3", retries=1,
                           sleep=sleeps.append)
    error = _fails(client)
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (502, "youtube_unreachable")
    assert "key=***" in error.message  # requests names the URL; its key is hidden


def test_an_answer_that_is_not_json_is_503_unavailable(fake, sleeps):
    fake.fail("videos", 200, body="<html>captive portal</html>")
    error = _fails(_client(fake, sleeps))
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (503, "youtube_unavailable")


def test_a_wrong_base_url_is_a_clear_error(fake, sleeps):
    client = YouTubeClient(fake.key, fake.url.replace("/youtube/v3", "/nothing"),
                           sleep=sleeps.append)
    error = _fails(client)
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (502, "youtube_error")
    assert "HTTP 404" in error.message


def test_a_malformed_comment_time_is_counted_not_fatal(sleeps):
    broken = thread("c0", "text", published="yesterday")
    with FakeYouTube(videos={VIDEO: FakeVideo(threads=[broken, thread("c1", "ok")])}) as fake:
        batch = _client(fake, sleeps).fetch(VIDEO, 10)
    times = {c.id: c.published_at for c in batch.comments}
    assert times == {"c0": None, "c1": datetime(2024, 5, 1, 12, tzinfo=UTC)}
    assert batch.unparsed_times == 1


def test_the_client_reads_key_and_url_from_settings(fake, sleeps, monkeypatch):
    monkeypatch.setenv("YOUTUBE_API_KEY", fake.key)
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_BASE_URL", fake.url)
    client = client_from_settings(ServiceSettings(), sleep=sleeps.append)
    assert len(client.fetch(VIDEO, 3).comments) == 3
