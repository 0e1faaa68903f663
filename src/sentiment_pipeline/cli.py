"""The `sentiment-pipeline` command line: run, stage, tune, config show, predict, analyze."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Annotated

import typer

from sentiment_pipeline.config.entities import PipelineConfig
from sentiment_pipeline.config.manager import DEFAULT_PARAMS, ConfigurationManager, parse_override
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.stages import STAGES, run_stage

logger = logging.getLogger("sentiment_pipeline.cli")

app = typer.Typer(
    help="Train, tune, evaluate and register sentiment classifiers for short text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
export_app = typer.Typer(help="Export a model to another runtime.", no_args_is_help=True)
app.add_typer(export_app, name="export")

ParamsOpt = Annotated[
    Path,
    typer.Option("--params", "-p", help="Parameter file to read instead of ./params.yaml."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override one key, e.g. --set train.distilbert.enable=false (repeatable).",
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Debug logging, library progress bars, and an error's traceback with its causes.",
    ),
]
TrustOpt = Annotated[
    bool | None,
    typer.Option(
        "--trust/--no-trust",
        help="Load a scikit-learn model from outside ./models "
        "(default: SENTIMENT_PIPELINE_TRUST_ARTIFACTS).",
    ),
]


def _fail(exc: PipelineError, verbose: bool = False) -> typer.Exit:
    """Print the error (with --verbose after its traceback and causes); exit with its code."""
    if verbose:
        typer.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(exc.exit_code)


def _manager(params: Path, overrides: list[str] | None) -> ConfigurationManager:
    return ConfigurationManager(params, overrides or [])


def _config_or_defaults(params: Path, overrides: list[str] | None) -> PipelineConfig:
    """The validated configuration, or the defaults where there is no params file and no
    --set (predict and analyze work outside a project; a broken config is still reported)."""
    if params.is_file() or overrides:
        return _manager(params, overrides).config
    return PipelineConfig()


def _write_params(params: Path, overrides: list[str]) -> bool:
    """Make ./params.yaml what DVC must see: a copy of --params FILE plus the overrides.

    Comments and layout survive (ruamel round trip). Returns whether the file changed.
    """
    from ruamel.yaml import YAML

    target = DEFAULT_PARAMS
    yaml = YAML()
    yaml.preserve_quotes = True
    tree = yaml.load(params.read_text())
    for item in overrides:
        parts, value = parse_override(item)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    buffer = StringIO()
    yaml.dump(tree, buffer)
    new_text = buffer.getvalue()
    if target.is_file() and target.read_text() == new_text:
        return False
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(new_text)
    os.replace(tmp, target)
    return True


@app.command()
def run(
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Rerun every stage.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline through DVC (`dvc repro`), skipping stages that are up to date.

    The configuration is validated first; a bad value stops everything with exit code 2.
    --params and --set are written into ./params.yaml (as `dvc exp run --set-param` does),
    because that file is what DVC tracks.
    """
    configure_logging(verbose)
    try:
        _manager(params, overrides)
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc
    if not Path("dvc.yaml").is_file():
        raise _fail(PipelineError("no dvc.yaml here; run from the project root"))
    if overrides or params.resolve() != DEFAULT_PARAMS.resolve():
        if _write_params(params, overrides or []):
            typer.echo(f"params.yaml updated with {', '.join(overrides or [str(params)])}")
    bin_dir = Path(sys.executable).parent
    dvc = shutil.which("dvc", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if dvc is None:
        raise _fail(PipelineError("dvc is not installed; pip install dvc"))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    if verbose:  # the stages (`python -m`, run by DVC) log at DEBUG and print tracebacks too
        env["SENTIMENT_PIPELINE_VERBOSE"] = "true"
    cmd = [dvc, "repro"] + (["--force"] if force else []) + (["--verbose"] if verbose else [])
    code = subprocess.call(cmd, env=env)
    if code != 0:
        typer.secho(f"error: dvc repro failed (exit {code}); see above", fg="red", err=True)
        raise typer.Exit(1)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGES)}.")],
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run one stage now, in this process, without DVC's caching.

    Useful while developing a stage; `run` is the reproducible way (DVC records the result).
    """
    configure_logging(verbose)
    if name not in STAGES:
        raise _fail(
            PipelineError(f"unknown stage {name!r}; expected one of: {', '.join(STAGES)}")
        )
    try:
        result = run_stage(name, _manager(params, overrides), ProjectPaths.at("."))
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc
    typer.echo(f"{name}: {result}")


TUNED = {"distilbert": "train_distilbert", "lightgbm": "train_lightgbm"}


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help=f"One of: {', '.join(TUNED)}.")],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna RDB storage shared by all workers, e.g. postgresql://user:pw@host/db "
            "(default: SENTIMENT_PIPELINE_OPTUNA_STORAGE, else the project's optuna.db).",
        ),
    ] = None,
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials", min=1,
            help="Finished trials the study owes in all, over every worker "
            "(= --set train.<model>.n_trials=N).",
        ),
    ] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run one tuning worker: start as many as you like, on as many machines, on one storage.

    The workers share the study (same name: same search space, data and model), stop once it
    has n_trials finished trials, and each writes the study's best model into its project.
    """
    configure_logging(verbose)
    if model not in TUNED:
        raise _fail(PipelineError(f"cannot tune {model!r}; expected one of: {', '.join(TUNED)}"))
    if n_trials is not None:
        overrides = [*(overrides or []), f"train.{model}.n_trials={n_trials}"]
    try:
        with _environment("SENTIMENT_PIPELINE_OPTUNA_STORAGE", storage):
            result = run_stage(TUNED[model], _manager(params, overrides), ProjectPaths.at("."))
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc
    typer.echo(f"tune {model}: {result}")


@contextlib.contextmanager
def _environment(name: str, value: str | None) -> Iterator[None]:
    """Set one environment setting for the duration of a command (None: leave it)."""
    from sentiment_pipeline.settings import get_settings

    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
        get_settings.cache_clear()
    try:
        yield
    finally:
        if value is not None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
            get_settings.cache_clear()


@config_app.command("show")
def config_show(
    params: ParamsOpt = DEFAULT_PARAMS, overrides: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """Print the resolved, validated configuration (defaults filled in) as YAML."""
    try:
        typer.echo(_manager(params, overrides).to_yaml(), nl=False)
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc


@app.command()
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A model directory, models:/<name>@<alias> or models:/<name>/<version>; "
            "default: models:/<register.model_name>@champion, else the evaluation's champion "
            "(models/evaluation/best_model.json).",
        ),
    ] = None,
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
        register = _config_or_defaults(params, overrides).register_
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
            )
            typer.echo(batch.describe_result(result))
            return
        if output is not None:
            rows = batch.write_texts(loaded, texts or [], output, output_format)
            typer.echo(f"wrote {rows} predictions to {output}")
            return
        frame = batch.predict_texts(loaded, texts or [])
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc
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
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A model directory, models:/<name>@<alias> or models:/<name>/<version>; "
            "default: models:/<register.model_name>@champion, else the evaluation's champion.",
        ),
    ] = None,
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
    trust: TrustOpt = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Analyse a video's comments (YouTube or a file): breakdown, trend, terms, report."""
    from sentiment_pipeline.insights import pipeline
    from sentiment_pipeline.settings import get_settings

    configure_logging(verbose)
    try:
        config = _config_or_defaults(params, overrides)
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
                youtube or "", max_comments=max_comments, config=insights, settings=get_settings()
            )
        loaded, info = pipeline.open_model(
            model, model_name=register.model_name, paths=ProjectPaths.at("."), trust=trust
        )
        result = pipeline.analyze_batch(batch, loaded, info, insights, charts=html is not None)
        written = pipeline.write_outputs(result, html=html, json_path=json_out, csv=csv_out)
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc
    typer.echo(pipeline.summary(result))
    for path in written:
        typer.echo(f"wrote {path}")


ModelSpecOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="A model directory, models:/<name>@<alias> or models:/<name>/<version>; default: "
        "serve.model, else models:/<register.model_name>@champion, else the evaluation's "
        "champion (models/evaluation/best_model.json).",
    ),
]


@app.command()
def serve(
    model: ModelSpecOpt = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Default: SENTIMENT_PIPELINE_HOST (127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Default: SENTIMENT_PIPELINE_PORT (8000).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes, one model each.")
    ] = 1,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a model over HTTP: /predict (TEI), /invocations (MLflow), /health, /info, /metrics,
    /v1/analyze and /v1/youtube/analyze, and the dashboard at /."""
    from sentiment_pipeline.serving.server import run_server

    configure_logging(verbose)
    try:
        manager = _manager(params, overrides)
        run_server(
            manager.config,
            ProjectPaths.at("."),
            model=model,
            host=host,
            port=port,
            workers=workers,
        )
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc


@export_app.command("onnx")
def export_onnx(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="A transformers model directory.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Target folder (default: <model>_onnx)."),
    ] = None,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="Also write an int8 copy: --quantize int8.")
    ] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Export a transformers model directory to ONNX (fp32, optionally int8 beside it)."""
    from sentiment_pipeline.models.onnx_export import export_command

    configure_logging(verbose)
    try:
        if quantize not in (None, "int8"):
            raise PipelineError(f"--quantize {quantize!r} is not supported; expected int8")
        config = _manager(params, overrides).get_onnx_export_config()
        written = export_command(model, output, quantize=quantize == "int8", config=config)
    except PipelineError as exc:
        raise _fail(exc, verbose) from exc
    for path in written:
        typer.echo(f"wrote {path}")


if __name__ == "__main__":
    app()
