"""Comments from a CSV / TSV / JSON Lines / Parquet file, read by the table reader."""

from __future__ import annotations

import logging
import numbers
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_pipeline.data import tables
from sentiment_pipeline.data.budget import Budget, Meter, OverBudget
from sentiment_pipeline.data.values import (
    escape_undecodable,
    has_undecodable,
    is_missing,
    is_number_text,
)
from sentiment_pipeline.errors import PipelineError, shortened
from sentiment_pipeline.insights.comments import BadFileError, Comment, CommentBatch

DEFAULT_LIMIT = 10_000
# What a file may expand to when read, per comment it may hold: a compressed upload (Parquet,
# .gz/.bz2/.xz/.zip/.zst) of a few hundred bytes can otherwise expand to gigabytes of text.
# YouTube's own limit is 10,000 characters a comment.
MAX_BYTES_PER_COMMENT = 10_000
MAX_NAME_CHARS = 255  # an upload's file name, as file systems allow: messages repeat it
logger = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")
# What the table reader's messages tell a user to change: the fields of an upload to
# /v1/analyze, or the options of the `analyze` command.
UPLOAD_OPTIONS = tables.TableOptions(
    format="format",
    encoding="encoding",
    source="the file",
    columns="text_column (or time_column, likes_column, author_column)",
)
COMMAND_OPTIONS = tables.TableOptions(
    format="--format",
    encoding="--encoding",
    source="--input",
    columns="--text-column (or --time-column, --likes-column, --author-column)",
)


def read_comments(
    source: Path | str | bytes,
    *,
    filename: str | None = None,
    format: str = "auto",  # noqa: A002 - the option's name, as the CLI and the upload form say
    text_column: str = "text",
    time_column: str | None = None,
    time_format: str | None = None,
    likes_column: str | None = None,
    author_column: str | None = None,
    encoding: str = "auto",
    limit: int = DEFAULT_LIMIT,
    options: tables.TableOptions = UPLOAD_OPTIONS,
) -> CommentBatch:
    """The comments of a file (a path, or an upload's bytes and `filename`), one per row.

    Timestamps: `time_format` (strftime, e.g. "%d-%m-%Y %H.%M"), else ISO 8601 or epoch
    seconds; a time without a zone is UTC; one that does not parse is counted, not fatal.
    Rows without text (empty, or not a string) are skipped and said so in the notes.
    `options`: the words messages use for the settings (an upload's fields; COMMAND_OPTIONS
    for the `analyze` command).
    """
    name = filename or (str(source) if not isinstance(source, bytes) else "upload")
    if isinstance(source, bytes) and len(name) > MAX_NAME_CHARS:
        raise BadFileError(
            "bad_file",
            f"the upload's file name is {len(name):,} characters long ({shortened(name)!r}); "
            f"name the file in at most {MAX_NAME_CHARS} characters",
        )
    if not isinstance(source, bytes) and not Path(source).is_file():
        what = "a directory" if Path(source).is_dir() else "no file"
        raise BadFileError(
            "bad_file",
            f"{source}: {what} there; give a {'/'.join(tables.FORMATS)} file of comments",
        )
    try:  # before an upload is written anywhere
        tables.resolve_format(name, format, options)
        tables.codec_of(encoding, options)
    except PipelineError as exc:
        raise BadFileError("bad_file", str(exc)) from None
    if isinstance(source, bytes):
        with tempfile.TemporaryDirectory(prefix="sentiment-upload-") as folder:
            path = Path(folder) / _temporary_name(name)
            path.write_bytes(source)
            frame = _read(path, name, format, encoding, options, limit)
    else:
        frame = _read(Path(source), name, format, encoding, options, limit)
    return comments_from_frame(
        frame,
        name=name,
        text_column=text_column,
        time_column=time_column,
        time_format=time_format,
        likes_column=likes_column,
        author_column=author_column,
        limit=limit,
    )


def _temporary_name(name: str) -> str:
    """`comments` plus the upload's last two suffixes (.csv.gz), for the reader's decompression."""
    suffixes = "".join(Path(name.replace("\\", "/")).suffixes[-2:])
    return "comments" + _UNSAFE.sub("_", suffixes)[:20]


def comment_budget(limit: int) -> Budget:
    """What one analysis may read: `limit` rows and MAX_BYTES_PER_COMMENT decoded bytes each."""
    return Budget(max_bytes=limit * MAX_BYTES_PER_COMMENT, max_rows=limit)


def too_large(refusal: OverBudget, limit: int) -> BadFileError:
    """The 413 for a source past the budget of insights.max_comments_limit = `limit`: the
    message speaks to whoever sent the file, the setting goes to the CLI and the server's log."""
    if refusal.what == "rows":
        message = (f"{refusal}, but one analysis may hold at most {limit:,} comments; send at "
                   f"most {limit:,} comments (a part of the file)")
    else:
        message = (f"{refusal} ({MAX_BYTES_PER_COMMENT:,} per comment for {limit:,} comments); "
                   "send fewer or shorter comments")
    return BadFileError("too_large", message, setting="insights.max_comments_limit")


def _read(path: Path, name: str, chosen: str, encoding: str, options: tables.TableOptions,
          limit: int) -> pd.DataFrame:
    try:
        return tables.read_table(path, chosen, encoding=encoding, options=options, name=name,
                                 budget=comment_budget(limit))
    except OverBudget as exc:
        raise too_large(exc, limit) from None
    except PipelineError as exc:
        raise BadFileError("bad_file", str(exc)) from None


def comments_from_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    text_column: str = "text",
    time_column: str | None = None,
    time_format: str | None = None,
    likes_column: str | None = None,
    author_column: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> CommentBatch:
    """The comments of a table's rows; `id` is the 1-based data row number.

    A file read by `read_comments` was counted as it was read; a table built otherwise (a
    JSON request's comments) is counted here against the same budget: `limit` rows and
    MAX_BYTES_PER_COMMENT bytes of text each.
    """
    _check_columns(frame.columns, name, text_column, time_column, likes_column, author_column)
    if len(frame) > limit:
        raise BadFileError(
            "too_large",
            f"{name} holds {len(frame):,} rows, more than the {limit:,} comments one analysis "
            f"may hold; send at most {limit:,} comments",
            setting="insights.max_comments_limit",
        )
    meter = Meter(comment_budget(limit), name)
    comments: list[Comment] = []
    skipped: list[int] = []
    undecodable = unparsed = 0
    bad_likes: list[tuple[int, object]] = []
    for row, record in enumerate(frame.to_dict("records"), start=1):
        text = record[text_column]
        if not isinstance(text, str) or not text.strip():
            skipped.append(row)
            continue
        try:
            meter.add_bytes(len(text.encode("utf-8", "surrogatepass")))
        except OverBudget as exc:
            raise too_large(exc, limit) from None
        if has_undecodable(text):
            undecodable += 1
            text = escape_undecodable(text)
        published = None
        if time_column is not None and not _blank(record[time_column]):
            published = parse_time(record[time_column], time_format)
            unparsed += published is None
        likes = 0
        if likes_column is not None and not _blank(record[likes_column]):
            parsed = parse_count(record[likes_column])
            if parsed is None:
                bad_likes.append((row, record[likes_column]))
            likes = parsed or 0
        author = record[author_column] if author_column is not None else None
        comments.append(Comment(
            text=text,
            id=str(row),
            author=None if _blank(author) else str(author),
            published_at=published,
            likes=likes,
        ))
    if not comments:
        raise BadFileError(
            "bad_file",
            f"{name} holds no comments: none of its {len(frame)} rows has text in the column "
            f"{shortened(text_column)!r}; check the text column (columns: "
            f"{_shown(frame.columns)})",
        )
    notes = _notes(name, text_column, likes_column, skipped, undecodable, bad_likes)
    if unparsed:
        example = next(v for v in frame[time_column] if not _blank(v) and
                       parse_time(v, time_format) is None)
        how = (f"the format {shortened(time_format)!r}" if time_format
               else "ISO 8601 or epoch seconds")
        notes.append(
            f"{unparsed} timestamps of column {shortened(str(time_column))!r} do not parse as "
            f"{how} (e.g. "
            f"{str(example)[:40]!r}) and are left out of the trend"
            + ("" if time_format else "; give their format with --time-format")
        )
    return CommentBatch(
        comments=comments,
        source={"kind": "file", "file": Path(name.replace("\\", "/")).name, "rows": len(frame)},
        unparsed_times=unparsed,
        notes=tuple(notes),
    )


def _blank(value: object) -> bool:
    """Missing, or text of blanks only (an empty field of a JSON line, a Parquet string)."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def _names(columns: Sequence[object]) -> list[str]:
    return [str(column) for column in columns]


def _shown(columns: Sequence[object]) -> str:
    """The column names as a message shows them: a header may be megabytes long."""
    return shortened(str(_names(columns)), 300)


def _check_columns(columns: Sequence[object], name: str, text: str, *optional: str | None) -> None:
    found = _names(columns)
    options = ("text_column", "time_column", "likes_column", "author_column")
    missing = [
        f"{shortened(column)!r} ({option}, --{option.replace('_', '-')})"
        for option, column in zip(options, (text, *optional), strict=True)
        if column is not None and column not in found
    ]
    if missing:
        raise BadFileError(
            "bad_file",
            f"expected the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} in "
            f"{name}, found {_shown(columns)}; name the file's columns with those options",
        )


def _notes(
    name: str,
    text_column: str,
    likes_column: str | None,
    skipped: list[int],
    undecodable: int,
    bad_likes: list[tuple[int, object]],
) -> list[str]:
    notes = []
    if skipped:
        notes.append(
            f"{len(skipped)} rows of {Path(name).name} have no text in column "
            f"{shortened(text_column)!r} "
            f"(empty or not a string, e.g. row {skipped[0]}) and were skipped"
        )
    if undecodable:
        notes.append(
            f"{undecodable} comments hold bytes that do not decode as text; they are shown as "
            "\\xNN escapes (is the file's encoding right?)"
        )
    if bad_likes:
        row, value = bad_likes[0]
        notes.append(
            f"{len(bad_likes)} values of column {shortened(str(likes_column))!r} are not whole "
            "numbers >= 0 "
            f"(e.g. row {row}: {str(value)[:40]!r}) and count as 0 likes"
        )
    return notes


def parse_count(value: object) -> int | None:
    """A like count: a whole number >= 0 (7, 7.0, "7", " 7 "); None for anything else."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not is_number_text(value):
            return None
        value = float(value)
    if not isinstance(value, numbers.Real):
        return None
    number = float(value)
    if not number.is_integer() or number < 0:
        return None
    return int(number)


def parse_time(value: object, time_format: str | None = None) -> datetime | None:
    """A timestamp as an aware UTC datetime; None when it does not parse (or is missing).

    With `time_format`, the text must match it (datetime.strptime); else ISO 8601 text, or
    epoch seconds (a number, or text of one). A time without a zone is taken as UTC.
    """
    if is_missing(value) or isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, datetime | np.datetime64):
        parsed = pd.Timestamp(value)
        return None if pd.isna(parsed) else _utc(parsed.to_pydatetime())
    text = value.strip() if isinstance(value, str) else value
    try:
        if time_format is not None:
            return _utc(datetime.strptime(str(text), time_format))
        if isinstance(text, str) and is_number_text(text):
            text = float(text)
        if isinstance(text, numbers.Real):
            return datetime.fromtimestamp(float(text), UTC)
        if isinstance(text, str):
            return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError):  # OSError: an epoch out of the platform's range
        return None
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
