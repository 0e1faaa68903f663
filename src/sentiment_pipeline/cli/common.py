"""What every command shares: the Typer apps, the common options, errors and configuration."""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path
from typing import Annotated

import typer

from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.errors import PipelineError

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


# What run, stage and tune need beyond the core dependencies (which serve, predict and analyze
# run on): the `pipeline` extra, MLflow's SQLite store (SQLAlchemy, Alembic) among it.
PIPELINE_MODULES = ("dvc", "optuna", "lightgbm", "ruamel.yaml", "sqlalchemy", "alembic")
PIPELINE_EXTRA = "pip install 'sentiment-pipeline[pipeline]'"


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a submodule of a missing package; a bare __spec__
        return False


def require_pipeline(command: str) -> None:
    """A PipelineError naming the extra when a module of the pipeline extra is missing."""
    missing = [module for module in PIPELINE_MODULES if not installed(module)]
    if missing:
        raise PipelineError(
            f"`sentiment-pipeline {command}` needs the pipeline extra ({', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed); {PIPELINE_EXTRA}"
        )


def fail(exc: PipelineError, verbose: bool = False) -> typer.Exit:
    """Print the error (with --verbose after its traceback and causes); exit with its code."""
    if verbose:
        typer.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(exc.exit_code)


def manager(params: Path, overrides: list[str] | None) -> ConfigurationManager:
    return ConfigurationManager(params, overrides or [])


def config_or_defaults(params: Path, overrides: list[str] | None) -> PipelineConfig:
    """The validated configuration, or the defaults where there is no params file and no
    --set (predict and analyze work outside a project; a broken config is still reported)."""
    if params.is_file() or overrides:
        return manager(params, overrides).config
    return PipelineConfig()


