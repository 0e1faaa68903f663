"""train_distilbert stage: fine-tune a transformer encoder, tuned by the tuning core."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sentiment_pipeline import runner
from sentiment_pipeline.config.distilbert import DistilBERTConfig
from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.models.distilbert import distributed, tuned
from sentiment_pipeline.models.distilbert.device import missing_dependencies
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage
from sentiment_pipeline.tuning.results import TuningSummary

if TYPE_CHECKING:
    from sentiment_pipeline.models.distilbert.trainer import TrainingSetup

logger = logging.getLogger(__name__)

MODEL_NAME = "distilbert"
MODULE = "sentiment_pipeline.models.train_distilbert"
SECTION = "train.distilbert"
# Config keys left out of the study key: the budget and where/how fast trials run (so workers
# on different machines join one study), and the subsample sizes (the data fingerprint covers
# the rows they select). Every other key changes what a trial measures. nproc_per_node is
# replaced by the number of processes that really train (see study_key).
RUN_ONLY_KEYS = frozenset(
    {"enable", "n_trials", "timeout", "device", "allow_cpu", "eval_batch_size",
     "max_train_samples", "max_eval_samples", "nproc_per_node"}
)


def study_key(config: DistilBERTConfig, data: str, processes: int = 1) -> dict[str, Any]:
    """What changes what a trial measures (see RUN_ONLY_KEYS for what does not)."""
    return tuned.study_key(config, data, RUN_ONLY_KEYS, processes)


def task(paths: ProjectPaths) -> tuned.FineTuneTask:
    """The text classifier on the comments data, under models/advanced/."""
    return tuned.FineTuneTask(
        name=MODEL_NAME, stage=STAGE.name, section=SECTION, model_dir=paths.distilbert_model,
        results_dir=paths.distilbert_results, metrics_path=paths.distilbert_metrics,
        run_only_keys=RUN_ONLY_KEYS,
    )


def follow(channel: distributed.Channel, setup: TrainingSetup) -> None:
    """A rank other than 0: train each trial rank 0 starts, with its parameters, until its study
    ends. Its model and measurements are rank 0's too (the ranks train one model); it keeps
    nothing and writes nothing."""
    from sentiment_pipeline.models.distilbert.trainer import run_trial

    reporter = distributed.FollowingReporter(channel)
    while (params := channel.next_trial()) is not None:
        run_trial(setup, DistilBERTTrialParams.model_validate(params), reporter)


def run(config: DistilBERTConfig, paths: ProjectPaths) -> TuningSummary | None:
    """The stage in this process; under torchrun / accelerate launch (WORLD_SIZE > 1) rank 0
    runs the study and the other ranks train alongside it, writing nothing (they return None)."""
    ranks = distributed.ranks(os.environ)
    labels = read_labels(paths)
    this = task(paths)
    placed = tuned.placement(config, SECTION)
    if isinstance(placed, str):
        return tuned.write_placeholders(this, config, labels, placed) if ranks.leader else None
    device, precision = placed
    train, val = read_split(paths, "train", labels), read_split(paths, "val", labels)
    setup, data = tuned.prepare(this, config, train, val, labels, device, precision)
    if ranks.distributed:
        return run_rank(config, paths, setup, data, ranks)
    if distributed.relaunch_command(config.nproc_per_node, os.environ, cuda_devices, MODULE, [],
                                    sys.executable):
        logger.warning(
            "train.distilbert.nproc_per_node=%s is for `python -m %s` (what dvc repro runs) and "
            "torchrun; this run trains in one process", config.nproc_per_node, MODULE,
        )
    logger.info("%d train / %d val texts on %s (%s), max_length %d", len(setup.train),
                len(setup.val), device, precision, setup.max_length)
    return tuned.tune(this, config, paths, setup, data)


def run_rank(
    config: DistilBERTConfig,
    paths: ProjectPaths,
    setup: TrainingSetup,
    data: str,
    ranks: distributed.Ranks,
) -> TuningSummary | None:
    """One rank of a data-parallel job: rank 0 leads the study, the others follow it."""
    channel = distributed.Channel.open(ranks, setup.device)
    if not ranks.leader:
        follow(channel, setup)
        channel.close()
        return None
    logger.info("%d train / %d val texts on %d %s processes (%s), max_length %d",
                len(setup.train), len(setup.val), ranks.world_size, setup.device,
                setup.precision, setup.max_length)
    with channel.leading():
        summary = tuned.tune(task(paths), config, paths, setup, data, channel)
    channel.close()
    return summary


def run_or_relaunch(config: DistilBERTConfig, paths: ProjectPaths) -> TuningSummary | None:
    """`python -m` (what dvc repro runs): run(), or, when train.distilbert.nproc_per_node asks
    for several processes and no launcher started this one, this module again under torchrun
    (this process becomes torchrun; its exit status is the stage's)."""
    command = None
    if config.enable:
        command = distributed.relaunch_command(
            config.nproc_per_node, os.environ, cuda_devices, MODULE, sys.argv[1:],
            sys.executable,
        )
    if command is None:
        if not distributed.ranks(os.environ).leader:
            # The other ranks repeat rank 0's lines; their warnings and errors still show.
            logging.getLogger("sentiment_pipeline").setLevel(logging.WARNING)
        return run(config, paths)
    logger.info("train.distilbert.nproc_per_node=%s: relaunching under torchrun: %s",
                config.nproc_per_node, " ".join(command))
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execv(command[0], command)
    return None  # not reached


def cuda_devices() -> int:
    """Visible CUDA devices (0 without torch)."""
    if missing_dependencies():
        return 0
    import torch

    return torch.cuda.device_count()


STAGE = Stage("train_distilbert", SECTION, DistilBERTConfig, run)

if __name__ == "__main__":
    runner.main(replace(STAGE, run=run_or_relaunch))
