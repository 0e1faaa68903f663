"""Aspects: which comments mention what (the creator's aspects and discovered ones), scored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights.comments import NOT_BLANK, InsightsError, not_blank
from sentiment_pipeline.insights.terms import content_runs
from sentiment_pipeline.models.artifacts.manifest import SentimentModel
from sentiment_pipeline.models.artifacts.pairs import term_pattern

MAX_TERM_CHARS = 60
MAX_TERMS = 30  # synonyms of one aspect
# The classes net sentiment is made of (train.aspects.label_map maps an adopted model's names).
POSITIVE, NEGATIVE = "positive", "negative"
# Not blank as a comment is not (checked in Python, stated as a pattern every JSON Schema engine
# reads alike); any other character may be a term: "c++" is matched whole too.
AspectTerm = Annotated[
    str, AfterValidator(not_blank),
    Field(max_length=MAX_TERM_CHARS, json_schema_extra={"minLength": 1, "pattern": NOT_BLANK}),
]
HOW_TO_GET = (
    "train one (`sentiment-pipeline run` with aspects.source set registers "
    "models:/aspect-classifier@champion), or name one with --aspect-model / serve.aspect_model"
)


class AspectSpec(BaseModel):
    """An aspect the creator asks about: its name (a term itself) and its synonyms."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: AspectTerm = Field(description="What the aspect is called, e.g. audio; also a term.")
    terms: list[AspectTerm] = Field(
        default_factory=list, max_length=MAX_TERMS,
        description="Other words for it, e.g. sound, mic (matched whole, case-insensitively).",
    )

    @property
    def all_terms(self) -> list[str]:
        """The name and the synonyms, each once (case-insensitively, spaces trimmed), the name
        first."""
        seen: dict[str, str] = {}
        for term in [self.name, *self.terms]:
            seen.setdefault(term.strip().lower(), term.strip())
        return list(seen.values())


def parse_aspect(text: str) -> AspectSpec:
    """The CLI form `audio` or `video quality=video,picture` (the name, then its synonyms)."""
    name, _, synonyms = text.partition("=")
    terms = [t.strip() for t in synonyms.split(",") if t.strip()]
    try:
        return AspectSpec(name=name.strip(), terms=terms)
    except ValueError as exc:
        raise InsightsError(
            "bad_request",
            f"--aspect {text!r} is not an aspect: give a name, optionally = and comma-separated "
            f"synonyms (e.g. \"video quality=video,picture\"), each 1 to {MAX_TERM_CHARS} "
            f"characters, at most {MAX_TERMS} synonyms ({exc})",
        ) from exc


@dataclass(frozen=True)
class Mention:
    """An aspect's first occurrence in a comment (it counts once per comment)."""

    comment: int  # the comment's index in the batch
    aspect: int  # the aspect's index in AspectScores.specs
    start: int  # the term's span in the comment's text
    end: int
    term: str  # as it occurs in the text: what the aspect model is asked about


def find_mentions(texts: Sequence[str], specs: Sequence[AspectSpec]) -> list[Mention]:
    """Every (comment, aspect) where one of the aspect's terms occurs, comment by comment."""
    patterns = [term_pattern(spec.all_terms) for spec in specs]
    found = []
    for i, text in enumerate(texts):
        for k, pattern in enumerate(patterns):
            match = pattern.search(text)
            if match:
                found.append(Mention(i, k, match.start(), match.end(), match.group()))
    return found


def discover(
    texts: Sequence[str], specs: Sequence[AspectSpec], n: int, min_count: int = 2
) -> list[tuple[str, int]]:
    """The `n` content words and two-word phrases most comments mention (each counted once per
    comment, at least `min_count` times), with their counts; none that overlaps a creator's
    term (one found in the other). No stop words, @handles, URLs or numbers (terms.tokenize)."""
    if n <= 0:
        return []
    counts: Counter[str] = Counter()
    for text in texts:
        seen = set()
        for run in content_runs(text):
            seen.update(run)
            seen.update(f"{a} {b}" for a, b in zip(run, run[1:], strict=False))
        counts.update(seen)
    creator = [t for spec in specs for t in spec.all_terms]
    taken = term_pattern(creator) if creator else None
    found = []
    for term, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if count < min_count or len(found) == n:
            break
        if taken is not None and (
            taken.search(term) or any(term_pattern([term]).search(t) for t in creator)
        ):
            continue
        found.append((term, count))
    return found


@dataclass(frozen=True)
class AspectScores:
    """The aspects of a batch, their mentions and the aspect model's probabilities for them:
    plain data, so the server can hand it to a parse process."""

    specs: list[AspectSpec]  # the creator's, then the discovered ones
    discovered: list[tuple[str, int]]  # the suggestions and their comment counts
    mentions: list[Mention]
    proba: np.ndarray  # one row per mention, the aspect model's classes
    labels: list[str]
    model_name: str


def check_request(specs: Sequence[AspectSpec], discover_n: int, config: InsightsConfig) -> None:
    """The request's aspects within the configured limits (too_large beyond them)."""
    if len(specs) > config.max_aspects:
        raise InsightsError(
            "too_large", f"{len(specs)} aspects asked; at most {config.max_aspects} per analysis",
            setting="insights.max_aspects",
        )
    if not 0 <= discover_n <= config.max_discover_aspects:
        raise InsightsError(
            "too_large" if discover_n > 0 else "bad_request",
            f"discover_aspects must be between 0 and {config.max_discover_aspects}, got "
            f"{discover_n}", setting="insights.max_discover_aspects",
        )


def check_model(model: SentimentModel | None) -> SentimentModel:
    """The aspect model, when there is one that takes (text, aspect) pairs with a positive and a
    negative class (no_aspect_model otherwise)."""
    if model is None:
        raise InsightsError("no_aspect_model", f"aspects were asked for but no aspect model is "
                            f"loaded; {HOW_TO_GET}")
    if model.manifest.input != "pair":
        raise InsightsError("no_aspect_model", f"the aspect model {model.manifest.name!r} takes "
                            f"single texts, not (text, aspect) pairs; {HOW_TO_GET}")
    missing = [c for c in (NEGATIVE, POSITIVE) if c not in model.labels]
    if missing:
        raise InsightsError("no_aspect_model", f"the aspect model {model.manifest.name!r} has the "
                            f"classes {model.labels}, without {missing}; map its labels to "
                            "negative / neutral / positive (train.aspects.label_map)")
    return model


def check_asked(
    specs: Sequence[AspectSpec], discover_n: int, model: SentimentModel | None,
    config: InsightsConfig,
) -> SentimentModel | None:
    """The aspect model a request needs (None when it asks for no aspect), or the error that
    it cannot have: the limits (too_large), the model (no_aspect_model). Cheap: a server asks
    before it spends a fetch on the comments."""
    check_request(specs, discover_n, config)
    return check_model(model) if specs or discover_n else None


def score_aspects(
    texts: Sequence[str],
    specs: Sequence[AspectSpec],
    discover_n: int,
    model: SentimentModel | None,
    config: InsightsConfig,
) -> AspectScores | None:
    """Find the aspects' mentions (after discovering `discover_n` more) and classify every
    (comment, term) pair in one call of the model, which batches them itself; None when no
    aspect is asked for."""
    model = check_asked(specs, discover_n, model, config)
    if model is None:
        return None
    found = discover(texts, specs, discover_n, config.terms_min_count)
    every = [*specs, *(AspectSpec(name=term) for term, _ in found)]
    mentions = find_mentions(texts, every)
    if len(mentions) > config.max_aspect_mentions:
        raise InsightsError(
            "too_large", f"the aspects are mentioned {len(mentions):,} times; one analysis may "
            f"classify at most {config.max_aspect_mentions:,} mentions: ask for fewer aspects "
            "or send fewer comments", setting="insights.max_aspect_mentions",
        )
    labels = list(model.labels)
    proba = (
        np.asarray(model.predict_proba([(texts[m.comment], m.term) for m in mentions]),
                   dtype=np.float64)
        if mentions else np.zeros((0, len(labels)))
    )
    if proba.shape != (len(mentions), len(labels)) or not np.isfinite(proba).all():
        raise ValueError(f"expected finite aspect probabilities of shape ({len(mentions)}, "
                         f"{len(labels)}), got shape {proba.shape}")
    return AspectScores(specs=every, discovered=found, mentions=mentions, proba=proba,
                        labels=labels, model_name=model.manifest.name)
