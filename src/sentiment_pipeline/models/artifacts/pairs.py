"""(text, aspect) pairs: finding the aspect in its text and the inputs a pair model is given."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Pair = tuple[str, str]
PairStyle = Literal["plain", "marked"]
# The aspect's span in the first segment is wrapped in these (both are single WordPiece tokens of
# the BERT vocabularies), so the encoder sees which occurrence of which words the question is about.
MARK_OPEN, MARK_CLOSE = "[", "]"
# Words either side of the aspect that the pair baseline's features describe.
NEAR_WORDS = 4
WORD = re.compile(r"\w+(?:'\w+)?")


def term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    """Any of `terms`, whole (no letter or digit just before or after), case-insensitive; the
    words of a multi-word term may be split by any whitespace. Longer terms are tried first, and
    a term may start or end with punctuation ("c++", '"sales" team')."""
    alternatives = [
        r"\s+".join(re.escape(word) for word in term.split())
        for term in sorted(terms, key=len, reverse=True)
    ]
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


def find_term(text: str, term: str) -> tuple[int, int] | None:
    """The (start, end) of the first occurrence of `term` in `text`, else None.

    Case-insensitive on word boundaries; a term that only occurs inside a word ("sound" in
    "soundtrack") falls back to a plain case-insensitive substring search, as labelled data
    sometimes names a part of a token.
    """
    if not term.strip():
        return None
    found = term_pattern([term]).search(text)
    if found:
        return found.start(), found.end()
    at = text.lower().find(term.strip().lower())
    return (at, at + len(term.strip())) if at >= 0 else None


def marked(text: str, aspect: str) -> str:
    """`text` with the first occurrence of `aspect` wrapped in MARK_OPEN / MARK_CLOSE."""
    span = find_term(text, aspect)
    if span is None:
        return text
    start, end = span
    return f"{text[:start]}{MARK_OPEN} {text[start:end]} {MARK_CLOSE}{text[end:]}"


def check_pairs(items: Sequence[object]) -> list[Pair]:
    """`items` as (text, aspect) tuples of strings; anything else is a ValueError naming it."""
    pairs = []
    for index, item in enumerate(items):
        if (
            not isinstance(item, (tuple, list))
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise ValueError(
                f"input {index} is {type(item).__name__}: a pair model takes (text, aspect) "
                "pairs of two strings"
            )
        pairs.append((item[0], item[1]))
    return pairs


def pair_segments(items: Sequence[object], style: PairStyle | None) -> tuple[list[str], list[str]]:
    """The tokenizer's two segments of each pair: the text (aspect marked when style is
    "marked") and the aspect. Training and inference both call this, so they never differ."""
    pairs = check_pairs(items)
    firsts = [marked(text, aspect) if style == "marked" else text for text, aspect in pairs]
    return firsts, [aspect for _, aspect in pairs]


def pair_document(text: str, aspect: str) -> str:
    """One string for a bag-of-words pair model: the whole text, then the words near the aspect
    and the aspect's own words, each prefixed so they are features of their own."""
    span = find_term(text, aspect)
    if span is None:
        before, after = [], []
    else:
        before = WORD.findall(text[: span[0]])[-NEAR_WORDS:]
        after = WORD.findall(text[span[1] :])[:NEAR_WORDS]
    near = [f"near_{word.lower()}" for word in before + after]
    left = [f"left_{word.lower()}" for word in before[-2:]]
    own = [f"aspect_{word.lower()}" for word in WORD.findall(aspect)]
    return " ".join([text, *near, *left, *own])


def pair_documents(items: Sequence[object]) -> list[str]:
    return [pair_document(text, aspect) for text, aspect in check_pairs(items)]
