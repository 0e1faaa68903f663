"""Commands that use a model: predict (texts or files), analyze (a video's comments), serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sentiment_pipeline.cli.common import (
    ParamsOpt,
    SetOpt,
    TrustOpt,
    VerboseOpt,
    app,
    config_or_defaults,
    fail,
)
from sentiment_pipeline.config.loading import DEFAULT_PARAMS
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.paths import ProjectPaths

SPEC_FORMS = "A model directory, models:/<name>@<alias> or models:/<name>/<version>"
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help=f"{SPEC_FORMS}; default: models:/<register.model_name>@champion, else the "
        "evaluation's champion (models/evaluation/best_model.json).",
    ),
]
ServeModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help=f"{SPEC_FORMS}; default: serve.model, else models:/<register.model_name>@champion, "
        "else the evaluation's champion (models/evaluation/best_model.json).",
    ),
]


@app.command()
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    model: ModelOpt = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input", "-i", help="CSV/TSV/Parquet/JSONL file with texts, read in chunks."
        ),
    ] = None,
    text_column: Annotated[
        str, typer.Option("--text-column", help="Column of --input holding the text.")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write predictions to this .parquet/.csv/.tsv/.jsonl file (written whole or "
            "not at all).",
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--output-format", help="parquet|csv|tsv|jsonl instead of the extension."),
    ] = None,
    input_format: Annotated[
        str | None,
        typer.Option("--input-format", help="csv|tsv|parquet|jsonl instead of the extension."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding of a CSV/TSV/JSONL --input (default: UTF-8)."),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Rows read, classified and written at once.")
    ] = 10_000,
    max_text_chars: Annotated[
        int,
        typer.Option("--max-text-chars", min=1,
                     help="Longest text classified; a longer one is an error naming its row."),
    ] = 100_000,
    max_chunk_bytes: Annotated[
        int,
        typer.Option("--max-chunk-bytes", min=1024,
                     help="Most bytes a chunk may decode to, counted as it is read (more: an "
                     "error naming its first row; lower --chunk-size)."),
    ] = 256_000_000,
    keep_columns: Annotated[
        bool,
        typer.Option(
            "--keep-columns/--no-keep-columns",
            help="Write every input column before the predictions (else only the text column).",
        ),
    ] = True,
    trust: TrustOpt = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Classify texts, or a whole file streamed in chunks, with any model."""
    from sentiment_pipeline import predict as batch

    configure_logging(verbose)
    try:
        register = config_or_defaults(params, overrides).register_
        if input_file is not None and texts:
            raise PipelineError("give texts as arguments or --input FILE, not both")
        if input_file is None and not texts:
            raise PipelineError("give texts as arguments or --input FILE")
        if input_file is not None and output is None:
            raise PipelineError("--input needs --output FILE (.parquet, .csv, .tsv or .jsonl)")
        if output is not None:  # refuse a bad output before loading the model
            batch.check_paths(input_file, output)
            batch.output_format(output, output_format)
        if input_file is not None:  # and an input without the text column
            batch.check_column(input_file, input_format, text_column, encoding or "auto")
        paths = ProjectPaths.at(".")
        loaded = batch.open_model(
            model, model_name=register.model_name, paths=paths, trust=trust
        )
        if input_file is not None and output is not None:
            result = batch.predict_file(
                loaded,
                input_file,
                output,
                text_column=text_column,
                chunk_size=chunk_size,
                in_format=input_format,
                out_format=output_format,
                keep_columns=keep_columns,
                encoding=encoding or "auto",
                max_text_chars=max_text_chars,
                max_chunk_bytes=max_chunk_bytes,
            )
            typer.echo(batch.describe_result(result))
            return
        if output is not None:
            rows = batch.write_texts(loaded, texts or [], output, output_format)
            typer.echo(f"wrote {rows} predictions to {output}")
            return
        frame = batch.predict_texts(loaded, texts or [])
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
    typer.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


@app.command()
def analyze(
    youtube: Annotated[
        str | None,
        typer.Option("--youtube", help="A YouTube video URL or id (needs YOUTUBE_API_KEY)."),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="A CSV/TSV/JSONL/Parquet file of comments."),
    ] = None,
    model: ModelOpt = None,
    text_column: Annotated[str, typer.Option(help="Column of --input with the text.")] = "text",
    time_column: Annotated[
        str | None, typer.Option(help="Column of --input with the time (for the trend).")
    ] = None,
    time_format: Annotated[
        str | None,
        typer.Option(help="strftime format of the times, e.g. '%d-%m-%Y %H.%M' (default: ISO "
                     "8601 or epoch seconds)."),
    ] = None,
    likes_column: Annotated[str | None, typer.Option(help="Column of --input with likes.")] = None,
    author_column: Annotated[
        str | None, typer.Option(help="Column of --input with the author.")
    ] = None,
    input_format: Annotated[
        str | None, typer.Option("--format", help="csv|tsv|jsonl|parquet instead of the extension.")
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding of a CSV/TSV/JSONL --input (default: UTF-8)."),
    ] = None,
    max_comments: Annotated[
        int | None,
        typer.Option(
            "--max-comments", min=1,
            help="YouTube comments to fetch (replies count; default insights.max_comments).",
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result as JSON here.")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write one row per comment as CSV here.")
    ] = None,
    aspect: Annotated[
        list[str] | None,
        typer.Option("--aspect", help="An aspect to read, e.g. audio or \"video quality=video,"
                     "picture\" (its name, then synonyms); repeat for more."),
    ] = None,
    discover: Annotated[
        int, typer.Option("--discover", min=0, help="Also find this many aspects the comments "
                          "mention most (at most insights.max_discover_aspects).")
    ] = 0,
    aspect_model: Annotated[
        str | None,
        typer.Option("--aspect-model", help=f"The aspect (pair) model: {SPEC_FORMS}; default: "
                     "models:/<register.aspect_model_name>@champion when one is registered."),
    ] = None,
    aspects_csv: Annotated[
        Path | None,
        typer.Option("--aspects-csv", help="Write one row per comment and aspect as CSV here."),
    ] = None,
    trust: TrustOpt = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Analyse a video's comments (YouTube or a file): breakdown, trend, terms, report."""
    from sentiment_pipeline.insights import pipeline
    from sentiment_pipeline.insights.aspects import parse_aspect
    from sentiment_pipeline.service_settings import get_service_settings

    configure_logging(verbose)
    try:
        config = config_or_defaults(params, overrides)
        register, insights = config.register_, config.insights
        if (youtube is None) == (input_file is None):
            raise PipelineError("give exactly one of --youtube URL or --input FILE")
        if input_file is not None and max_comments is not None:
            raise PipelineError(
                "--max-comments counts the comments fetched with --youtube; a file is analysed "
                "whole (up to insights.max_comments_limit rows)"
            )
        if input_file is not None:
            options = pipeline.FileOptions(
                text_column=text_column, time_column=time_column, time_format=time_format,
                likes_column=likes_column, author_column=author_column,
                format=input_format or "auto", encoding=encoding or "auto",
            )
            batch = pipeline.file_batch(input_file, options, limit=insights.max_comments_limit)
        else:
            batch = pipeline.youtube_batch(
                youtube or "", max_comments=max_comments, config=insights,
                settings=get_service_settings(),
            )
        aspects = [parse_aspect(text) for text in aspect or []]
        loaded, info = pipeline.open_model(
            model, model_name=register.model_name, paths=ProjectPaths.at("."), trust=trust
        )
        pairs = (
            pipeline.open_aspect_model(aspect_model, model_name=register.aspect_model_name,
                                       paths=ProjectPaths.at("."), trust=trust)
            if aspects or discover else None
        )
        result = pipeline.analyze_batch(
            batch, loaded, info, insights, charts=html is not None, aspects=aspects,
            discover_aspects=discover, aspect_model=pairs,
        )
        written = pipeline.write_outputs(result, html=html, json_path=json_out, csv=csv_out,
                                         aspects_csv=aspects_csv)
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
    typer.echo(pipeline.summary(result))
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def serve(
    model: ServeModelOpt = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Default: SENTIMENT_PIPELINE_HOST (127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Default: SENTIMENT_PIPELINE_PORT (8000).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes, one model each.")
    ] = 1,
    trust: TrustOpt = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a model over HTTP: /predict (TEI), /invocations (MLflow), /health, /info, /metrics,
    /v1/analyze and /v1/youtube/analyze, and the dashboard at /."""
    from sentiment_pipeline.serving.server import run_server

    configure_logging(verbose)
    try:
        run_server(
            config_or_defaults(params, overrides),
            ProjectPaths.at("."),
            model=model,
            host=host,
            port=port,
            workers=workers,
            trust=trust,
        )
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
