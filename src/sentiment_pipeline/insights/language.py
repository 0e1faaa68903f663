"""Offline language identification of comments (py3langid, probabilities normalised)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

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


def detect(
    texts: Iterable[str], min_chars: int = DEFAULT_MIN_CHARS
) -> list[tuple[str | None, float]]:
    """(ISO 639-1 code, probability) per text; (None, 0.0) for one shorter than `min_chars`.

    The length counts the text without surrounding blanks: a few words are too little evidence
    for a language, and an unchecked comment is better than a wrongly flagged one.
    """
    model = None
    found: list[tuple[str | None, float]] = []
    for text in texts:
        if len(text.strip()) < min_chars:
            found.append((None, 0.0))
            continue
        model = model or identifier()
        language, probability = model.classify(text)
        found.append((str(language), float(probability)))
    return found
