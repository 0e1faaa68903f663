"""An analysis from end to end: a source's comments -> the model -> the analysis (+ charts).

The CLI and the server share these functions; the server classifies through its own batcher and
calls `finish` with the probabilities.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.insights import analysis, files, language, report, youtube
from sentiment_pipeline.insights.aspect_report import mentions_csv
from sentiment_pipeline.insights.aspects import AspectScores, AspectSpec, score_aspects
from sentiment_pipeline.insights.charts import render_charts
from sentiment_pipeline.insights.comments import CommentBatch, InsightsError
from sentiment_pipeline.insights.result import AnalysisResult, ModelInfo
from sentiment_pipeline.insights.wording import readable_time
from sentiment_pipeline.insights.youtube_links import parse_video_id
from sentiment_pipeline.io import atomic_path
from sentiment_pipeline.models.artifacts.manifest import SentimentModel
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import opening
from sentiment_pipeline.registry.opening import LoadedModel
from sentiment_pipeline.service_settings import ServiceSettings

logger = logging.getLogger(__name__)


def open_model(
    spec: str | None, *, model_name: str, paths: ProjectPaths, trust: bool | None = None
) -> tuple[SentimentModel, ModelInfo]:
    """`--model` opened as predict and serve do, and described for the result."""
    opened = opening.open_model(spec, model_name=model_name, paths=paths, trust=trust)
    return opened.model, model_info(opened)


def open_aspect_model(
    spec: str | None, *, model_name: str, paths: ProjectPaths, trust: bool | None = None
) -> SentimentModel | None:
    """`--aspect-model` opened as the service opens serve.aspect_model
    (registry.opening.open_aspect_model): None, the default, is the registry's
    `models:/<model_name>@champion`, or no aspect model when none is registered or the registry
    is unreachable (asking for aspects then fails with no_aspect_model)."""
    opened = opening.open_aspect_model(spec, model_name=model_name, paths=paths, trust=trust)
    return None if opened is None else opened.model


def model_info(loaded: LoadedModel) -> ModelInfo:
    """The result's "model": name, registry version, kind and the runtime it ran on."""
    return ModelInfo(name=loaded.resolved.name, version=loaded.resolved.version,
                     kind=loaded.model.manifest.kind, backend=loaded.backend)


def youtube_batch(
    video: str, *, max_comments: int | None, config: InsightsConfig, settings: ServiceSettings
) -> CommentBatch:
    """A video's comments through the YouTube Data API, with the key of this machine."""
    wanted = config.max_comments if max_comments is None else max_comments
    if not 1 <= wanted <= config.max_comments_limit:
        raise InsightsError(
            "too_large" if wanted > config.max_comments_limit else "bad_request",
            f"max_comments must be between 1 and {config.max_comments_limit:,}, got {wanted:,}",
            setting="insights.max_comments_limit",
        )
    key = settings.youtube_api_key.get_secret_value() if settings.youtube_api_key else None
    client = youtube.YouTubeClient(key, settings.youtube_base_url)
    return client.fetch(parse_video_id(video), wanted, config.order)


@dataclass(frozen=True)
class FileOptions:
    """How to read a comments file: its format and which columns hold what."""

    text_column: str = "text"
    time_column: str | None = None
    time_format: str | None = None
    likes_column: str | None = None
    author_column: str | None = None
    format: str = "auto"  # csv|tsv|jsonl|parquet, or auto: from the extension
    encoding: str = "auto"


def file_batch(path: Path, options: FileOptions, *, limit: int) -> CommentBatch:
    """The comments of a local file (at most `limit`, else too_large)."""
    return files.read_comments(
        path,
        format=options.format,
        text_column=options.text_column,
        time_column=options.time_column,
        time_format=options.time_format,
        likes_column=options.likes_column,
        author_column=options.author_column,
        encoding=options.encoding,
        limit=limit,
        options=files.COMMAND_OPTIONS,
    )


def analyze_batch(
    batch: CommentBatch,
    model: SentimentModel,
    model_info: ModelInfo,
    config: InsightsConfig,
    *,
    charts: bool = False,
    aspects: list[AspectSpec] | None = None,
    discover_aspects: int = 0,
    aspect_model: SentimentModel | None = None,
) -> AnalysisResult:
    """Classify the batch with `model`, its aspects' mentions with `aspect_model` (all pairs in
    one call), and analyse it; elapsed_s covers all of it."""
    started = time.perf_counter()
    texts = [c.text for c in batch.comments]
    scored = score_aspects(texts, aspects or [], discover_aspects, aspect_model, config)
    proba = model.predict_proba(texts) if texts else np.zeros((0, len(model.labels)))
    return finish(batch, proba, model.labels, model_info, config, charts=charts, started=started,
                  aspects=scored)


def finish(
    batch: CommentBatch,
    proba: np.ndarray,
    labels: list[str],
    model_info: ModelInfo,
    config: InsightsConfig,
    *,
    charts: bool = False,
    started: float | None = None,
    aspects: AspectScores | None = None,
) -> AnalysisResult:
    """The analysis of classified comments (language check, aggregates, charts if asked).

    started: time.perf_counter() when the request began, so elapsed_s includes the model;
    aspects: the scored aspect mentions (aspects.score_aspects), None when none were asked for.
    """
    started = time.perf_counter() if started is None else started
    texts = [c.text for c in batch.comments]
    languages = (
        language.detect(texts, config.language_min_chars, config.language)
        if config.language is not None
        else []
    )
    result = analysis.analyze(
        batch, proba, labels, model_info, config, languages, time.perf_counter() - started,
        aspects=aspects,
    )
    rendered = render_charts(result) if charts else None
    return result.model_copy(
        update={"charts": rendered, "elapsed_s": round(time.perf_counter() - started, 4)}
    )


def write_outputs(
    result: AnalysisResult,
    *,
    html: Path | None = None,
    json_path: Path | None = None,
    csv: Path | None = None,
    aspects_csv: Path | None = None,
) -> list[Path]:
    """Write the report, the raw result (without charts), the per-comment CSV and the
    per-mention CSV of the aspects, atomically."""
    written = []
    if json_path is not None:
        write_text(json_path, result.as_json(indent=2, charts=False) + "\n")
        written.append(json_path)
    if csv is not None:
        write_text(csv, report.comments_csv(result))
        written.append(csv)
    if aspects_csv is not None:
        write_text(aspects_csv, mentions_csv(result))
        written.append(aspects_csv)
    if html is not None:
        write_text(html, report.render_html(result, result.charts or render_charts(result)))
        written.append(html)
    return written


def write_text(path: Path, text: str) -> None:
    """Write `text` whole or not at all; a failure names the file."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror or exc}") from exc


def summary(result: AnalysisResult) -> str:
    """A few lines for a terminal: counts, the breakdown with intervals, the trend's span."""
    counts = result.counts
    lines = [
        f"{counts.comments} comments, {counts.analysed} analysed "
        f"({counts.other_language} in another language, {counts.replies} replies) "
        f"in {result.elapsed_s:.2f} s with {result.model.name}",
    ]
    width = max((len(r.label) for r in result.breakdown), default=5)
    for row in result.breakdown:
        lines.append(
            f"  {row.label:<{width}}  {row.count:>6}  {100 * row.share:5.1f} %  "
            f"(95 % CI {100 * row.ci_low:.1f}-{100 * row.ci_high:.1f} %)"
        )
    buckets = result.trend.buckets
    if buckets:
        lines.append(
            f"trend: {len(buckets)} {result.trend.period}s from {readable_time(buckets[0].start)}"
            f" to {readable_time(buckets[-1].start)}"
        )
    for aspect in result.aspects:
        kind = " (discovered)" if aspect.discovered else ""
        lines.append(
            f"aspect {aspect.name}{kind}: {aspect.count} comments ({100 * aspect.share:.1f} %), "
            f"net {100 * aspect.net.value:+.0f} % (95 % CI {100 * aspect.net.ci_low:+.0f} to "
            f"{100 * aspect.net.ci_high:+.0f} %)"
        )
    if result.discovered_aspects:
        lines.append("suggested aspects: " + ", ".join(
            f"{d.term} ({d.count})" for d in result.discovered_aspects))
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)
