"""The report's building blocks: escaped HTML tables and footnote marks, formula-safe CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

# A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def note_mark(number: int) -> str:
    """A footnote's number, linked to it at the foot of the page."""
    return f'<sup><a href="#note-{number}">{number}</a></sup>'


def section(title: str, content: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{content}\n</section>"


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def table(
    header: Sequence[str | tuple[str, int]], rows: Iterable[Sequence[tuple[str, bool]]]
) -> str:
    """An HTML table; a header is text or (text, footnote number), each cell (text, numeric);
    every text is escaped here."""
    head = "".join(
        f"<th>{escape(h)}</th>" if isinstance(h, str)
        else f"<th>{escape(h[0])}{note_mark(h[1])}</th>"
        for h in header
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td{" class=num" if num else ""}>{escape(text)}</td>' for text, num in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def formula_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with ' (shown, not run)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV (CRLF lines) with every text cell formula-safe and None as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([formula_safe(h) for h in header])
    for cells in rows:
        writer.writerow(["" if c is None else formula_safe(c) for c in cells])
    return buffer.getvalue()
