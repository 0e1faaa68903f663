"""Comment sources: YouTube links, comment files (every format and time form), languages."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from sentiment_pipeline.insights.comments import InsightsError
from sentiment_pipeline.insights.files import parse_count, parse_time, read_comments
from sentiment_pipeline.insights.language import detect
from sentiment_pipeline.insights.youtube_links import parse_video_id
from sentiment_pipeline.serving.errors import INSIGHTS_STATUS

ID = "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    "text",
    [
        ID,
        f"  {ID}\n",
        f"https://www.youtube.com/watch?v={ID}",
        f"http://youtube.com/watch?v={ID}",
        f"youtube.com/watch?v={ID}",
        f"www.youtube.com/watch?v={ID}",
        f"//www.youtube.com/watch?v={ID}",
        f"https://www.youtube.com:443/watch?v={ID}",
        f"https://www.youtube.com/watch?v={ID}&t=42s&list=PL123&index=2",
        f"https://www.youtube.com/watch?feature=share&v={ID}",
        f"https://m.youtube.com/watch?v={ID}",
        f"https://music.youtube.com/watch?v={ID}&si=abc",
        f"https://youtu.be/{ID}",
        f"https://youtu.be/{ID}?si=Xyz_123&t=10",
        f"youtu.be/{ID}",
        f"https://www.youtube.com/shorts/{ID}",
        f"https://youtube.com/shorts/{ID}?feature=share",
        f"https://www.youtube.com/embed/{ID}?autoplay=1",
        f"https://www.youtube-nocookie.com/embed/{ID}",
        f"https://www.youtube.com/live/{ID}?si=abc",
        f"https://www.youtube.com/v/{ID}",
        f"HTTPS://WWW.YOUTUBE.COM/watch?v={ID}",
        f"https://www.youtube.com/watch/?v={ID}#comments",
        "https://youtu.be/a-b_c-d_e-f",
    ],
)
def test_video_ids_from_every_link_form(text):
    assert parse_video_id(text) in (ID, "a-b_c-d_e-f")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "dQw4w9WgXc",  # 10 characters
        "dQw4w9WgXcQQ",  # 12
        "dQw4w9WgX!Q",
        f"https://vimeo.com/{ID}",
        f"https://www.youtube.com.evil.example/watch?v={ID}",
        f"https://evil.example/youtu.be/{ID}",
        f"https://evil.example/watch?v={ID}",
        f"ftp://www.youtube.com/watch?v={ID}",
        f"javascript:alert('{ID}')",
        "https://www.youtube.com/watch",
        "https://www.youtube.com/watch?v=short",
        f"https://www.youtube.com/watch?v={ID}&v=aaaaaaaaaaa",
        "https://www.youtube.com/channel/UCuAXFkgsw1L7xaCfnd5JJOw",
        "https://www.youtube.com/@somechannel",
        "https://www.youtube.com/playlist?list=PL0123456789",
        f"https://youtu.be/{ID}/extra",
        f"https://www.youtube.com/shorts/{ID}/extra",
        f"https://www.youtube.com/results?search_query={ID}",
        f"https://www.youtube.com/watch?v={ID} and more",
        "https://[::1/watch?v=dQw4w9WgXcQ",
    ],
)
def test_anything_else_is_a_422_naming_the_input(text):
    with pytest.raises(InsightsError) as caught:
        parse_video_id(text)
    error = caught.value
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (422, "bad_video")
    assert repr(text) in error.message
    assert "youtu.be" in error.message  # says what is accepted


def test_a_huge_input_is_named_shortened():
    with pytest.raises(InsightsError, match=r"\(10002 characters\)"):
        parse_video_id("x" * 10_000)


# --- files ------------------------------------------------------------------------------------

ROWS = [
    {"body": "Great flight, thanks!", "when": "24-02-2015 11.35", "likes": "3", "who": "ann"},
    {"body": "Lost my bag again.", "when": "25-02-2015 08.05", "likes": "", "who": "bob"},
    {"body": "", "when": "25-02-2015 09.00", "likes": "1", "who": "cy"},
    {"body": "Seat was fine", "when": "yesterday", "likes": "0", "who": ""},
]
AIRLINE = {"text_column": "body", "time_column": "when", "time_format": "%d-%m-%Y %H.%M",
           "likes_column": "likes", "author_column": "who"}


def _check_airline(batch):
    assert [c.text for c in batch.comments] == [
        "Great flight, thanks!", "Lost my bag again.", "Seat was fine"
    ]
    assert [c.id for c in batch.comments] == ["1", "2", "4"]  # data row numbers
    assert [c.published_at for c in batch.comments] == [
        datetime(2015, 2, 24, 11, 35, tzinfo=UTC), datetime(2015, 2, 25, 8, 5, tzinfo=UTC), None
    ]
    assert [c.likes for c in batch.comments] == [3, 0, 0]
    assert [c.author for c in batch.comments] == ["ann", "bob", None]
    assert batch.unparsed_times == 1
    assert any("1 rows" in note and "row 3" in note for note in batch.notes)
    assert any("'yesterday'" in note and "trend" in note for note in batch.notes)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_each_format_from_a_path(tmp_path, fmt):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"comments.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    else:
        frame.to_parquet(path)
    batch = read_comments(path, **AIRLINE)

    _check_airline(batch)
    assert batch.source == {"kind": "file", "file": "comments." + fmt, "rows": 4}


def test_an_upload_as_bytes_with_its_name(tmp_path):
    data = pd.DataFrame(ROWS).to_csv(index=False).encode()
    batch = read_comments(gzip.compress(data), filename="Export (1).csv.gz", **AIRLINE)
    _check_airline(batch)
    assert batch.source["file"] == "Export (1).csv.gz"


def test_the_format_option_overrides_the_extension():
    data = pd.DataFrame(ROWS).to_csv(index=False, sep="\t").encode()
    _check_airline(read_comments(data, filename="comments.txt", format="tsv", **AIRLINE))


def test_iso_and_epoch_times_without_a_format(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [
        {"text": "a", "t": "2024-05-01T12:00:00Z"},
        {"text": "b", "t": "2024-05-01T14:00:00+02:00"},
        {"text": "c", "t": 1714564800},
        {"text": "d", "t": "1714564800.5"},
        {"text": "e", "t": "2024-05-01"},
        {"text": "f", "t": "01/05/2024"},
        {"text": "g", "t": None},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    batch = read_comments(path, time_column="t")

    noon = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert [c.published_at for c in batch.comments] == [
        noon, noon, noon, noon.replace(microsecond=500_000), datetime(2024, 5, 1, tzinfo=UTC),
        None, None,
    ]
    assert batch.unparsed_times == 1  # "01/05/2024"; the missing one is not counted
    assert any("ISO 8601 or epoch seconds" in note and "--time-format" in note
               for note in batch.notes)


def test_parquet_timestamps_keep_their_instant(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({
        "text": ["a", "b"],
        "t": pd.to_datetime(["2024-05-01 12:00", "2024-05-01 14:00"]).tz_localize("Europe/Paris"),
    }).to_parquet(path)
    batch = read_comments(path, time_column="t")
    assert [c.published_at for c in batch.comments] == [
        datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC)
    ]


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("24-02-2015 11.35", "%d-%m-%Y %H.%M", datetime(2015, 2, 24, 11, 35, tzinfo=UTC)),
        ("24-02-2015 11.35", None, None),  # no parser guesses this one
        ("2015-02-24 11:35:52 -0800", None, datetime(2015, 2, 24, 19, 35, 52, tzinfo=UTC)),
        ("2015-02-24 11:35 +0100", "%Y-%m-%d %H:%M %z", datetime(2015, 2, 24, 10, 35,
                                                                 tzinfo=UTC)),
        ("0", None, datetime(1970, 1, 1, tzinfo=UTC)),
        (1e20, None, None),
        ("", None, None),
        (True, None, None),
    ],
)
def test_parse_time(value, fmt, expected):
    assert parse_time(value, fmt) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), (7.0, 7), (" 7 ", 7), ("1e3", 1000), (-1, None), (2.5, None), ("many", None),
     (True, None)],
)
def test_parse_count(value, expected):
    assert parse_count(value) == expected


def test_bad_like_counts_are_noted_and_count_zero():
    data = b"text,likes\nfine,4\nsure,lots\n"
    batch = read_comments(data, filename="c.csv", likes_column="likes")
    assert [c.likes for c in batch.comments] == [4, 0]
    assert any("row 2: 'lots'" in note for note in batch.notes)


def test_missing_columns_are_named_with_the_columns_found():
    data = b"body,created\nhello,2024-05-01\n"
    with pytest.raises(InsightsError) as caught:
        read_comments(data, filename="c.csv", time_column="time", likes_column="likes")
    error = caught.value
    assert (INSIGHTS_STATUS[error.kind], error.kind) == (422, "bad_file")
    assert "'text' (text_column, --text-column)" in error.message
    assert "'time' (time_column, --time-column)" in error.message
    assert "'likes' (likes_column" in error.message
    assert "found ['body', 'created']" in error.message


def test_more_rows_than_the_limit_is_413():
    data = b"text\n" + b"".join(b"comment %d\n" % i for i in range(6))
    with pytest.raises(InsightsError, match="insights.max_comments_limit") as caught:
        read_comments(data, filename="c.csv", limit=5)
    assert (INSIGHTS_STATUS[caught.value.kind], caught.value.kind) == (413, "too_large")
    # what an HTTP caller reads names no server setting; the CLI's message (above) does
    assert caught.value.message == ("c.csv holds more than 5 rows, but one analysis may hold at "
                                    "most 5 comments; send at most 5 comments (a part of the "
                                    "file)")
    assert len(read_comments(data, filename="c.csv", limit=6).comments) == 6


def test_non_string_texts_are_skipped_and_a_file_without_any_is_refused(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": 12}\n{"text": "ok"}\n{"text": null}\n{"text": ["a"]}\n')
    batch = read_comments(path)
    assert [c.text for c in batch.comments] == ["ok"]
    assert any(note.startswith("3 rows") for note in batch.notes)
    path.write_text('{"text": 12}\n{"text": "  "}\n')
    with pytest.raises(InsightsError, match="holds no comments.*'text'"):
        read_comments(path)


def test_another_encoding_is_read_when_named():
    data = "text\ncafé très bon\n".encode("latin-1")
    batch = read_comments(data, filename="c.csv", encoding="latin-1")
    assert batch.comments[0].text == "café très bon"
    undecoded = read_comments(data, filename="c.csv")  # read as UTF-8: shown escaped
    assert undecoded.comments[0].text == "caf\\xe9 tr\\xe8s bon"
    assert any("do not decode" in note for note in undecoded.notes)


@pytest.mark.parametrize(
    ("data", "options", "match"),
    [
        (b"text\nhi\n", {"filename": "c.xlsx"}, r"c\.xlsx.*accepted formats.*set format"),
        (b"text\nhi\n", {"filename": "c.csv", "format": "xml"}, "format 'xml' is not supported"),
        (b"text\nhi\n", {"filename": "c.csv", "encoding": "klingon"}, "encoding 'klingon'"),
        (b"text;likes\nhi;1\n", {"filename": "c.csv"}, r"c\.csv looks separated by semicolons"),
        (b'{"text": "a"}\nnot json\n', {"filename": "c.jsonl"}, r"line 2 of c\.jsonl is not JSON"),
        (b"\xff\xfet\x00", {"filename": "c.csv"}, "set encoding=utf-16"),
    ],
)
def test_unreadable_uploads_are_422_naming_the_upload(data, options, match):
    with pytest.raises(InsightsError, match=match) as caught:
        read_comments(data, **options)
    assert (INSIGHTS_STATUS[caught.value.kind], caught.value.kind) == (422, "bad_file")
    assert "sentiment-upload-" not in caught.value.message  # the temporary copy is not named
    assert "data." not in caught.value.message  # ingestion's params keys are not the options


def test_a_path_that_is_not_a_file(tmp_path):
    with pytest.raises(InsightsError, match="no file there"):
        read_comments(tmp_path / "missing.csv")
    with pytest.raises(InsightsError, match="a directory there"):
        read_comments(tmp_path)


# --- languages --------------------------------------------------------------------------------


def test_languages_are_told_apart_and_short_texts_are_not_checked():
    found = detect(
        [
            "The flight was delayed for three hours and nobody told us anything.",
            "Excelente servicio, el personal fue muy amable con nosotros durante todo el viaje.",
            "ok thanks",
            "   short text here     ",
        ],
        min_chars=20,
        expected="en",
    )
    (en, p_en, en_en), (es, p_es, es_en), short, padded = found
    assert (en, es) == ("en", "es")
    assert p_en > 0.9 and p_es > 0.9
    assert en_en == p_en and es_en < 0.01
    assert short == padded == (None, 0.0, None)
    assert detect(["ok thanks"], min_chars=5)[0][0] is not None


def test_compressed_uploads_that_expand_past_the_limit_are_refused_before_reading():
    """A few hundred bytes of Parquet or gzip can decode to gigabytes: refused while
    streaming, at limit x MAX_BYTES_PER_COMMENT bytes, with 413 too_large."""
    import gzip
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from sentiment_pipeline.insights import files

    limit = 10
    bound = limit * files.MAX_BYTES_PER_COMMENT
    parquet = io.BytesIO()
    pq.write_table(pa.table({"text": ["a" * (bound // 4)] * 8}), parquet, compression="zstd")
    gz = gzip.compress(b"text\n" + (b"b" * 1000 + b"\n") * (bound // 500))
    for data, name in ((parquet.getvalue(), "bomb.parquet"), (gz, "bomb.csv.gz")):
        assert len(data) < bound // 10
        with pytest.raises(InsightsError) as caught:
            read_comments(data, filename=name, limit=limit)
        error = caught.value
        assert (INSIGHTS_STATUS[error.kind], error.kind) == (413, "too_large")
        assert name in error.message and "10 comments" in error.message
        assert "insights.max_comments_limit" in str(error)  # the CLI names the setting
    small = gzip.compress(b"text\n" + b"fine comment\n" * 5)
    assert len(read_comments(small, filename="ok.csv.gz", limit=limit).comments) == 5
