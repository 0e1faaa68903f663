"""Logging and library verbosity, set once at the edges (the CLI and `python -m` stage entries)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(verbose: bool = False) -> None:
    """Our INFO lines (DEBUG with --verbose) on stderr; libraries at WARNING unless verbose.

    Hugging Face's progress bars and info chatter and Optuna's per-trial lines show only with
    --verbose: the stages report progress themselves.
    """
    logging.basicConfig(level=logging.WARNING, format=FORMAT, datefmt="%H:%M:%S")
    logging.getLogger("sentiment_pipeline").setLevel(logging.DEBUG if verbose else logging.INFO)
    # A tracking server that is down is reported once by the stage; urllib3's "Retrying ..."
    # warnings before that are noise unless asked for.
    logging.getLogger("urllib3.connectionpool").setLevel(
        logging.DEBUG if verbose else logging.ERROR
    )
    set_library_verbosity(verbose)


def set_library_verbosity(verbose: bool) -> None:
    """Optuna's and Hugging Face's verbosity, for those of them installed (both are extras)."""
    try:
        import optuna
    except ImportError:
        pass
    else:
        optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    if verbose:
        hf_logging.set_verbosity_info()
        hf_logging.enable_progress_bar()
    else:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
