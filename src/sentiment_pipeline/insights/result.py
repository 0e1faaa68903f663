"""The analysis result: one typed tree for /v1/analyze, `analyze --json`, the report and the CLI."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

Period = Literal["hour", "day", "week", "month"]


class Part(BaseModel):
    """A frozen part of the result that refuses unknown keys and non-finite numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ModelInfo(Part):
    """The model that classified the comments."""

    name: str = Field(description="Registered model name, or the model folder's name.")
    version: str | None = Field(description="Registry version; null for a folder.")
    kind: str = Field(description="Manifest kind: sklearn, transformers or onnx.")
    backend: str = Field(description="The runtime it ran on: sklearn, torch, onnx or onnx-int8.")


class VideoInfo(Part):
    """The YouTube video the comments belong to."""

    id: str = Field(description="The 11-character video id.")
    title: str | None = Field(description="Its title, as YouTube gives it.")
    channel: str | None = Field(description="The channel's title.")
    comment_count: int | None = Field(ge=0, description="Comments YouTube counts (all of them).")
    url: str = Field(description="The video's watch URL.")


class YouTubeSource(Part):
    """Comments fetched from a YouTube video."""

    kind: Literal["youtube"] = Field(description="Where the comments came from.")
    video: VideoInfo = Field(description="The video.")


class FileSource(Part):
    """Comments read from a file (the CLI's --input or an upload)."""

    kind: Literal["file"] = Field(description="Where the comments came from.")
    file: str = Field(description="The file's name, without its folder.")
    rows: int = Field(ge=0, description="Rows in the file, with or without text.")


class JsonSource(Part):
    """Comments sent in a JSON request."""

    kind: Literal["json"] = Field(description="Where the comments came from.")


Source = Annotated[YouTubeSource | FileSource | JsonSource, Field(discriminator="kind")]


class Counts(Part):
    """How many comments there are, how many the aggregates use, and why the others not."""

    comments: int = Field(ge=0, description="Comments classified.")
    analysed: int = Field(ge=0, description="Comments the breakdown, trend, tops and terms use.")
    replies: int = Field(ge=0, description="Comments that reply to another.")
    other_language: int = Field(ge=0, description="Comments flagged as another language.")
    language_unchecked: int = Field(ge=0, description="Comments too short to check the language.")
    with_time: int = Field(ge=0, description="Comments with a timestamp.")
    unparsed_times: int = Field(ge=0, description="Timestamps present but unparseable.")
    implausible_times: int = Field(
        0, ge=0,
        description="Timestamps left out of the trend: before 2005 or in the future (all of "
        "them when most are).",
    )
    no_time: int = Field(ge=0, description="Comments without any timestamp.")


class BreakdownRow(Part):
    """One class's share of the analysed comments."""

    label: str = Field(description="Class name.")
    count: int = Field(ge=0, description="Analysed comments predicted as this class.")
    share: float = Field(ge=0, le=1, description="count / analysed (0 when none).")
    ci_low: float = Field(ge=0, le=1, description="Lower end of the 95 % Wilson interval.")
    ci_high: float = Field(ge=0, le=1, description="Upper end of the 95 % Wilson interval.")


class WeightedRow(Part):
    """One class's share when each comment weighs 1 + its likes."""

    label: str = Field(description="Class name.")
    weight: float = Field(ge=0, description="Sum of 1 + likes over the class's comments.")
    share: float = Field(ge=0, le=1, description="weight / the weight of all classes.")


class TrendBucket(Part):
    """One period of the trend (UTC)."""

    start: str = Field(description="The period's start, ISO 8601 UTC, e.g. 2015-02-24T00:00:00Z.")
    count: int = Field(ge=0, description="Analysed dated comments in the period.")
    counts: dict[str, int] = Field(description="Comments per class.")
    shares: dict[str, float] = Field(description="Share per class (all 0 in an empty period).")


class Trend(Part):
    """Class shares over time, in buckets chosen from the span of the dated comments."""

    period: Period | None = Field(description="Bucket size; null when no comment has a time.")
    buckets: list[TrendBucket] = Field(
        description="Every bucket from the first to the last dated comment, empty ones too."
    )


class CommentRow(Part):
    """One comment with its prediction."""

    index: int = Field(ge=0, description="Position in the input (rows without text skipped).")
    id: str | None = Field(description="YouTube comment id, the sent id, or the file row number.")
    url: str | None = Field(
        None, description="The comment on YouTube (watch?v=VIDEO&lc=ID); null for other sources."
    )
    text: str = Field(description="The comment as written, cut to insights.max_text_chars "
                      "characters (then '…').")
    author: str | None = Field(description="Its author, when the source gives one (cut alike).")
    published_at: str | None = Field(description="When it was written, ISO 8601 UTC.")
    likes: int = Field(ge=0, description="Likes (or the file's likes column).")
    is_reply: bool = Field(description="Whether it replies to another comment.")
    label: str = Field(description="The predicted class.")
    confidence: float = Field(ge=0, le=1, description="The predicted class's probability.")
    scores: dict[str, float] = Field(description="Every class's probability (6 digits).")
    language: str | None = Field(description="Detected language; null when not checked.")
    other_language: bool = Field(description="Flagged as a language the model was not made for.")


class Term(Part):
    """A word that sets a class apart from the others."""

    term: str = Field(description="The word, lower-cased.")
    z: float = Field(description="Log-odds-ratio z-score (informative Dirichlet prior).")
    count: int = Field(ge=0, description="Its occurrences in the class's comments.")


class DiscoveredAspect(Part):
    """A word or two-word phrase many comments mention: a suggested aspect."""

    term: str = Field(description="The word or phrase, lower-cased.")
    count: int = Field(ge=0, description="Comments that mention it (before the language check).")


class AspectMention(Part):
    """One comment's mention of an aspect, as the aspect model read it."""

    index: int = Field(ge=0, description="The comment's index (its row in comments).")
    term: str = Field(description="The aspect's term as it occurs in the comment (its first).")
    label: str = Field(description="The aspect model's class for the aspect in this comment.")
    confidence: float = Field(ge=0, le=1, description="That class's probability.")


class AspectExample(Part):
    """A comment that mentions an aspect, with the aspect's place in it."""

    index: int = Field(ge=0, description="The comment's index (its row in comments).")
    id: str | None = Field(description="The comment's id, as in its row.")
    url: str | None = Field(description="The comment on YouTube; null for other sources.")
    text: str = Field(description="The comment, or the part of it around the aspect when it "
                      "is longer than insights.max_text_chars ('…' where it is cut).")
    start: int = Field(ge=0, description="Where the aspect's term begins in text (a character "
                       "offset, in Unicode code points).")
    end: int = Field(ge=0, description="Where it ends (exclusive).")
    label: str = Field(description="The aspect model's class.")
    confidence: float = Field(ge=0, le=1, description="That class's probability.")
    likes: int = Field(ge=0, description="The comment's likes.")


class NetSentiment(Part):
    """Positive share minus negative share, with its 95 % interval."""

    value: float = Field(ge=-1, le=1, description="positive share - negative share.")
    ci_low: float = Field(ge=-1, le=1, description="Lower end of the 95 % interval (MOVER).")
    ci_high: float = Field(ge=-1, le=1, description="Upper end of the 95 % interval.")


class AspectResult(Part):
    """How the analysed comments that mention one aspect feel about it."""

    name: str = Field(description="The aspect's name.")
    terms: list[str] = Field(description="Its terms, the name first.")
    discovered: bool = Field(description="Discovered in the comments, not asked for.")
    count: int = Field(ge=0, description="Analysed comments that mention it.")
    share: float = Field(ge=0, le=1, description="count / analysed comments (0 when none).")
    breakdown: list[BreakdownRow] = Field(description="Share of each aspect class among them.")
    weighted_breakdown: list[WeightedRow] = Field(
        description="The same with each comment weighing 1 + its likes."
    )
    net: NetSentiment = Field(description="Positive share minus negative share.")
    trend: Trend = Field(description="The aspect's class shares over time.")
    examples: dict[str, list[AspectExample]] = Field(
        description="Each class's most liked mentions (ties: the more confident first)."
    )
    mentions: list[AspectMention] = Field(description="Every mention, in comment order.")


class Charts(Part):
    """The charts as SVG documents (only when asked for)."""

    breakdown: str = Field(description="Share per class with its interval (SVG).")
    trend: str = Field(description="Class shares and comment counts per period (SVG).")
    terms: str = Field(description="Each class's distinctive terms (SVG).")
    aspects: str | None = Field(
        None, description="Aspects by net sentiment with intervals (SVG); absent without aspects."
    )

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler):
        # An analysis without aspects answers with the three charts it always had. No return
        # annotation: with one, pydantic would publish that type as the JSON schema.
        data = handler(self)
        if self.aspects is None:
            data.pop("aspects", None)
        return data


class AnalysisResult(Part):
    """The analysis of a source's comments: every figure computed from the model's scores."""

    model: ModelInfo = Field(description="The model that classified the comments.")
    source: Source = Field(description="Where the comments came from.")
    labels: list[str] = Field(description="The model's classes, in its order.")
    counts: Counts = Field(description="Comments seen, analysed, and left out.")
    breakdown: list[BreakdownRow] = Field(description="Share of each class, in label order.")
    weighted_breakdown: list[WeightedRow] = Field(
        description="Share of each class with each comment weighing 1 + its likes."
    )
    trend: Trend = Field(description="Class shares over time.")
    top_comments: dict[str, list[CommentRow]] = Field(
        description="Each class's most liked comments (ties: the more confident first)."
    )
    uncertain: list[CommentRow] = Field(description="The least confident predictions first.")
    terms: dict[str, list[Term]] = Field(description="Each class's distinctive terms.")
    comments: list[CommentRow] = Field(description="Every comment's prediction, input order.")
    aspects: list[AspectResult] = Field(
        default_factory=list,
        description="Each aspect asked for, then each discovered one (empty when none).",
    )
    discovered_aspects: list[DiscoveredAspect] = Field(
        default_factory=list, description="The suggested aspects with their counts, most first."
    )
    notes: list[str] = Field(description="Caveats a reader needs (source, languages, times).")
    elapsed_s: float = Field(ge=0, description="Seconds the analysis took, the model included.")
    charts: Charts | None = Field(
        default=None, description="The charts, when asked for (absent otherwise)."
    )

    def as_json(self, *, indent: int | None = None, charts: bool = True) -> str:
        """The JSON the clients read (strict: no NaN); `charts` only when there are some."""
        leave_out = None if charts and self.charts is not None else {"charts"}
        return json.dumps(
            self.model_dump(mode="json", exclude=leave_out), indent=indent, allow_nan=False
        )
