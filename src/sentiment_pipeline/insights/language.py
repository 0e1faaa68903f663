"""Offline language identification of comments (py3langid, probabilities normalised)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

DEFAULT_MIN_CHARS = 20

_lock = threading.Lock()
_identifier: Any = None  # a py3langid LanguageIdentifier, built on first use


def identifier() -> Any:
    """The one identifier of the process (built once, lazily, under a lock: it takes ~1 s)."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier


class Guess(NamedTuple):
    """The identifier's most likely language of a text, its probability, and the probability
    it gives the `expected` language (None when none was asked or the text is unchecked)."""

    language: str | None
    probability: float
    expected: float | None = None


UNCHECKED = Guess(None, 0.0, None)


def detect(
    texts: Iterable[str], min_chars: int = DEFAULT_MIN_CHARS, expected: str | None = None
) -> list[Guess]:
    """A Guess per text; UNCHECKED for one shorter than `min_chars`.

    The length counts the text without surrounding blanks: a few words are too little evidence
    for a language, and an unchecked comment is better than a wrongly flagged one. The
    probability of the expected language is what a flag should rest on: on short texts the
    identifier spreads its belief over related languages (a clear Spanish sentence may get 0.5
    for 'es'), while the probability it leaves for English is then well under 1 %.
    """
    model = None
    found: list[Guess] = []
    for text in texts:
        if len(text.strip()) < min_chars:
            found.append(UNCHECKED)
            continue
        model = model or identifier()
        ranked = model.rank(text)
        language, probability = ranked[0]
        other = None if expected is None else float(dict(ranked).get(expected, 0.0))
        found.append(Guess(str(language), float(probability), other))
    return found
