"""Model folders an attacker could hand us, built for real so that each refusal is tested."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from synthetic import LABELS

# What skops reports as untrusted in the payload; the attacker's manifest lists exactly these.
SHELL_TYPES = ["builtins.object", "numpy.full_like", "subprocess.check_output"]


def shell_command_pipeline(marker: Path) -> Pipeline:
    """A Pipeline whose predict_proba runs `touch <marker>` in a shell, whatever the texts.

    numpy.full_like turns the texts into the command, subprocess.check_output runs it, and a
    DummyClassifier gives the Pipeline the predict_proba that serving calls.
    """
    command = f"touch {shlex.quote(str(marker))}"
    return Pipeline(
        [
            ("command", FunctionTransformer(
                np.full_like, kw_args={"fill_value": command, "dtype": object}
            )),
            ("run", FunctionTransformer(subprocess.check_output, kw_args={"shell": True})),
            ("clf", DummyClassifier().fit([[0], [1], [2]], [0, 1, 2])),
        ]
    )


def save_shell_command_model(target: Path, marker: Path) -> Path:
    """The issue's attack: a model folder whose old-format manifest lists the payload's types
    in `trusted_types`, which the loader before the allow-list believed."""
    target.mkdir(parents=True)
    sio.dump(shell_command_pipeline(marker), target / "pipeline.skops")
    trusted = sorted(sio.get_untrusted_types(file=target / "pipeline.skops"))
    manifest = {
        "name": "baseline",
        "kind": "sklearn",
        "labels": LABELS,
        "files": {"estimator": "pipeline.skops"},
        "trusted_types": trusted,
    }
    (target / "model.json").write_text(json.dumps(manifest))
    return target


def run_like_the_old_loader(model_dir: Path) -> None:
    """What the loader did before the allow-list: trust the types the manifest lists, predict."""
    manifest = json.loads((model_dir / "model.json").read_text())
    estimator = sio.load(model_dir / "pipeline.skops", trusted=manifest["trusted_types"])
    estimator.predict_proba(["hi"])
