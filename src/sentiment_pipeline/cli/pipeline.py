"""Commands that build models: run (dvc repro), stage, tune, config show, export onnx."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Annotated

import typer

from sentiment_pipeline.cli.common import (
    PIPELINE_EXTRA,
    ParamsOpt,
    SetOpt,
    VerboseOpt,
    app,
    config_app,
    export_app,
    fail,
    manager,
    require_pipeline,
)
from sentiment_pipeline.cli.run_summary import closing_summary
from sentiment_pipeline.config.loading import DEFAULT_PARAMS, parse_override
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.stages import STAGES, run_stage


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
    """Run the whole pipeline through DVC (`dvc repro`), skipping stages that are up to date;
    then say how each model scored, which one won, where it is and how to serve it.

    The configuration is validated first; a bad value stops everything with exit code 2.
    --params and --set are written into ./params.yaml (as `dvc exp run --set-param` does),
    because that file is what DVC tracks.
    """
    configure_logging(verbose)
    try:
        require_pipeline("run")
        manager(params, overrides)
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
    if not Path("dvc.yaml").is_file():
        raise fail(PipelineError("no dvc.yaml here; run from the project root"))
    if overrides or params.resolve() != DEFAULT_PARAMS.resolve():
        if _write_params(params, overrides or []):
            typer.echo(f"params.yaml updated with {', '.join(overrides or [str(params)])}")
    bin_dir = Path(sys.executable).parent
    dvc = shutil.which("dvc", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if dvc is None:
        raise fail(PipelineError(f"no dvc command beside {sys.executable} or on PATH; "
                                 f"{PIPELINE_EXTRA}"))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    if verbose:  # the stages (`python -m`, run by DVC) log at DEBUG and print tracebacks too
        env["SENTIMENT_PIPELINE_VERBOSE"] = "true"
    cmd = [dvc, "repro"] + (["--force"] if force else []) + (["--verbose"] if verbose else [])
    code = subprocess.call(cmd, env=env)
    if code != 0:
        typer.secho(f"error: dvc repro failed (exit {code}); see above", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo("\n" + closing_summary(ProjectPaths.at(".")))


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
        raise fail(
            PipelineError(f"unknown stage {name!r}; expected one of: {', '.join(STAGES)}")
        )
    try:
        require_pipeline("stage")
        result = run_stage(name, manager(params, overrides).config, ProjectPaths.at("."))
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
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
        raise fail(PipelineError(f"cannot tune {model!r}; expected one of: {', '.join(TUNED)}"))
    if n_trials is not None:
        overrides = [*(overrides or []), f"train.{model}.n_trials={n_trials}"]
    try:
        require_pipeline("tune")
        with _environment("SENTIMENT_PIPELINE_OPTUNA_STORAGE", storage):
            result = run_stage(
                TUNED[model], manager(params, overrides).config, ProjectPaths.at(".")
            )
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
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
        typer.echo(manager(params, overrides).to_yaml(), nl=False)
    except PipelineError as exc:
        raise fail(exc, verbose) from exc


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
    from sentiment_pipeline.models.conversion.command import export_command

    configure_logging(verbose)
    try:
        if quantize not in (None, "int8"):
            raise PipelineError(f"--quantize {quantize!r} is not supported; expected int8")
        config = manager(params, overrides).config.export.onnx
        written = export_command(model, output, quantize=quantize == "int8", config=config)
    except PipelineError as exc:
        raise fail(exc, verbose) from exc
    for path in written:
        typer.echo(f"wrote {path}")
