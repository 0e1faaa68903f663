"""train_distilbert data-parallel: torchrun with 2 processes on the CPU (gloo), the tiny model.

Rank 0 alone writes (outputs, the Optuna study, MLflow runs); the ranks train one model, so
halving the per-process batch on 2 processes reproduces one process's validation macro-F1; a
prune rank 0 decides stops both ranks at the same step; a failure on either rank ends the job
instead of leaving the other waiting. Every rank runs with tests/ddp_probe/sitecustomize.py,
which records what the rank writes in the project and how its trials end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from crash import stage_env
from sentiment_pipeline.config.loading import apply_overrides, load_params
from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.errors import ConfigError
from sentiment_pipeline.models.distilbert import distributed
from sentiment_pipeline.paths import ProjectPaths

MODULE = "sentiment_pipeline.models.train_distilbert"
PROBE = Path(__file__).resolve().parent / "ddp_probe"
TORCHRUN = Path(sys.executable).parent / "torchrun"
# A hang shows as this timeout; a run takes 10-30 s on two quiet cores.
HANG_S = 150

# --- pure helpers ------------------------------------------------------------------------------


def test_without_a_launcher_the_process_is_rank_0_of_1() -> None:
    ranks = distributed.ranks({})

    assert ranks == distributed.Ranks(0, 1, 0)
    assert ranks.leader and not ranks.distributed
    assert not distributed.under_launcher({"RANK": "0"})


def test_ranks_come_from_the_launcher_variables() -> None:
    environ = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node0"}

    ranks = distributed.ranks(environ)

    assert ranks == distributed.Ranks(rank=3, world_size=8, local_rank=1)
    assert ranks.distributed and not ranks.leader
    assert distributed.under_launcher(environ)
    assert distributed.under_launcher({"LOCAL_RANK": "0"})  # accelerate launch, one process


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"WORLD_SIZE": "two"}, r"WORLD_SIZE='two' is not an integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2, WORLD_SIZE=2, LOCAL_RANK=0 is no process"),
        ({"WORLD_SIZE": "0"}, r"expected 0 <= RANK < WORLD_SIZE"),
        ({"LOCAL_RANK": "-1", "WORLD_SIZE": "2"}, r"LOCAL_RANK >= 0"),
    ],
)
def test_impossible_launcher_variables_are_a_config_error(environ, match) -> None:
    with pytest.raises(ConfigError, match=match):
        distributed.ranks(environ)


def test_the_relaunch_command_is_torchrun_on_this_node_with_the_same_arguments() -> None:
    command = distributed.relaunch_command(
        4, {}, lambda: 0, MODULE, ["--verbose"], "/venv/bin/python"
    )

    assert command == [
        "/venv/bin/python", "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node=4", "-m", MODULE, "--verbose",
    ]


@pytest.mark.parametrize(
    ("setting", "environ", "gpus", "expected"),
    [
        (1, {}, 8, None),  # one process: run here
        (2, {"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 0, None),  # already under torchrun
        (2, {"LOCAL_RANK": "0"}, 0, None),  # accelerate launch, one process
        ("auto", {}, 0, None),  # no GPU: one process
        ("auto", {}, 1, None),
        ("auto", {}, 4, 4),
        (2, {}, 0, 2),  # CPU processes when asked for
    ],
)
def test_the_stage_relaunches_only_when_asked_for_several_processes_outside_a_launcher(
    setting, environ, gpus, expected
) -> None:
    command = distributed.relaunch_command(setting, environ, lambda: gpus, MODULE, [], "python")

    if expected is None:
        assert command is None
    else:
        assert f"--nproc-per-node={expected}" in command


@pytest.mark.parametrize("value", ["0", "-2", "two", "true", "2000", "1.5"])
def test_nproc_per_node_is_auto_or_a_positive_integer(project, value) -> None:
    override = f"train.distilbert.nproc_per_node={value}"

    with pytest.raises(ConfigError, match=r"train\.distilbert\.nproc_per_node.*auto or an integer"):
        ConfigurationManager(project.root / "params.yaml", [override])


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), ("8", 8), ("1", 1)])
def test_nproc_per_node_accepts_auto_and_integers(project, value, expected) -> None:
    config = ConfigurationManager(
        project.root / "params.yaml", [f"train.distilbert.nproc_per_node={value}"]
    ).config.train.distilbert

    assert config.nproc_per_node == expected


def test_several_processes_make_another_study_and_one_keeps_the_old_one(project) -> None:
    pytest.importorskip("transformers")
    from sentiment_pipeline.models import train_distilbert as dt
    from sentiment_pipeline.tuning.study import study_name

    config = ConfigurationManager(project.root / "params.yaml").config.train.distilbert
    old = {"config": config.model_dump(mode="json", exclude=set(dt.RUN_ONLY_KEYS)), "data": "d"}

    assert dt.study_key(config, "d") == dt.study_key(config, "d", processes=1) == old
    assert study_name("distilbert", dt.study_key(config, "d", processes=2)) != study_name(
        "distilbert", old
    )


# --- two processes under torchrun ----------------------------------------------------------------


def fixed_vocabulary() -> list[str]:
    """Every word of the fixture texts but the n<i> counters, and the characters they split in."""
    from synthetic import make_comments

    words = {w for text in make_comments(600, seed=1)["text"] for w in text.split()}
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    counters = {w for w in words if w[0] == "n" and w[1:].isdigit()}
    return list(dict.fromkeys([*sorted(words - counters), *chars, *(f"##{c}" for c in chars)]))


@pytest.fixture(scope="module")
def deterministic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model in every run: a fixed vocabulary, weights from torch seed 0 (dim 64),
    no dropout, so that 1 process x 16 texts and 2 processes x 8 texts compute the same steps
    (dropout masks are drawn per process)."""
    pytest.importorskip("transformers")
    import torch

    from tiny_transformer import build_tiny_transformer

    torch.set_num_threads(1)  # as conftest's tiny_transformer: faster on shared cores
    target = tmp_path_factory.mktemp("tiny-seed-0") / "model"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        build_tiny_transformer(target, dim=64, hidden_dim=128, vocab=fixed_vocabulary())
    config = json.loads((target / "config.json").read_text())
    config.update(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
    (target / "config.json").write_text(json.dumps(config))
    return target


def set_params(paths: ProjectPaths, *overrides: str) -> None:
    """Write the overrides into the project's params.yaml, which the stage processes read."""
    params = paths.root / "params.yaml"
    params.write_text(yaml.safe_dump(apply_overrides(load_params(params), overrides)))


def fixed_trial(model: Path, batch_size: int, *extra: str) -> list[str]:
    """One point of the search space (every bound low == high), seed 42, no pruning."""
    return [
        "train.distilbert.allow_cpu=true",
        f"train.distilbert.model_name_or_path={model}",
        "train.distilbert.max_length=32",
        "train.distilbert.lr=[2.0e-3, 2.0e-3]",
        "train.distilbert.epochs=[5, 5]",
        f"train.distilbert.batch_size=[{batch_size}]",
        "train.distilbert.weight_decay=[0.0, 0.0]",
        "train.distilbert.warmup_ratio=[0.0, 0.0]",
        "train.distilbert.evals_per_epoch=1",
        "train.distilbert.pruner=none",
        "train.distilbert.seed=42",
        *extra,
    ]


class Launched:
    """One stage command in the project, with the probe in every rank."""

    def __init__(self, paths: ProjectPaths, command: list[str], fault: str = "") -> None:
        self.probe_dir = paths.root.parent / f"probe-{time.monotonic_ns()}"
        self.probe_dir.mkdir()
        env = stage_env(paths.root)
        env.update(PYTHONPATH=str(PROBE), DDP_PROBE_DIR=str(self.probe_dir),
                   DDP_PROBE_FAULT=fault)
        start = time.monotonic()
        try:
            done = subprocess.run(command, cwd=paths.root, env=env, capture_output=True,
                                  text=True, timeout=HANG_S)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{command} still running after {HANG_S} s (a rank hangs):\n"
                                 f"{exc.stdout}\n{exc.stderr}") from None
        self.seconds = time.monotonic() - start
        self.returncode = done.returncode
        self.output = f"{done.stdout}\n{done.stderr}"

    def events(self, rank: int, kind: str) -> list[dict]:
        path = self.probe_dir / f"rank{rank}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [event for event in map(json.loads, lines) if event["kind"] == kind]


def torchrun(paths: ProjectPaths, fault: str = "") -> Launched:
    assert TORCHRUN.is_file(), f"no torchrun beside {sys.executable}"
    return Launched(paths, [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", MODULE],
                    fault)


def mlflow_runs(paths: ProjectPaths) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{paths.mlflow_db}")
    experiments = client.search_experiments()
    return [run for e in experiments for run in client.search_runs([e.experiment_id])]


def study_trials(paths: ProjectPaths) -> list:
    import optuna

    storage = f"sqlite:///{paths.optuna_db}"
    studies = optuna.get_all_study_summaries(storage)
    assert len(studies) == 1, [s.study_name for s in studies]
    return optuna.load_study(study_name=studies[0].study_name, storage=storage).get_trials()


@pytest.mark.slow
def test_two_processes_write_one_set_of_outputs_and_reproduce_one_process_f1(
    processed, deterministic_model, tmp_path
) -> None:
    pytest.importorskip("transformers")
    from sentiment_pipeline.models import train_distilbert as dt
    from sentiment_pipeline.models.artifacts.loader import load_model

    single = ProjectPaths.at(shutil.copytree(processed.root, tmp_path / "single"))
    set_params(processed, *fixed_trial(deterministic_model, 8, "train.distilbert.n_trials=2"))

    launched = torchrun(processed)

    assert launched.returncode == 0, launched.output
    metrics = json.loads(processed.distilbert_metrics.read_text())
    assert metrics["status"] == "trained" and metrics["trials"]["complete"] == 2
    assert metrics["details"]["processes"] == 2
    assert metrics["best_params"]["per_device_train_batch_size"] == 8
    model = load_model(processed.distilbert_model)
    assert model.predict_proba(["great flight", "rude crew"]).shape == (2, 3)
    # Rank 0 wrote the outputs, the study and the runs; rank 1 nothing at all in the project.
    assert launched.events(0, "write")
    assert launched.events(1, "write") == []
    assert [t.state.name for t in study_trials(processed)] == ["COMPLETE", "COMPLETE"]
    runs = mlflow_runs(processed)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_id for p in parents] == [metrics["mlflow_run_id"]]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.tags["optuna_trial"] for r in children) == ["0", "1"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {metrics["mlflow_run_id"]}
    # Both ranks trained the same steps and measured the same (gathered) validation score.
    trials = [launched.events(rank, "trial") for rank in (0, 1)]
    assert trials[0] == trials[1] and len(trials[0]) == 2
    assert trials[0][0]["steps"] == 5 * 144 // 16  # 2 x 8 texts per step, 5 epochs

    # One process with twice the batch: the same effective batch of 16 texts per step.
    started = time.monotonic()
    overrides = fixed_trial(deterministic_model, 16, "train.distilbert.n_trials=1")
    config = ConfigurationManager(single.root / "params.yaml", overrides).config.train.distilbert
    one = dt.run(config, single)
    one_seconds = time.monotonic() - started

    two = metrics["best_val_macro_f1"]
    print(f"val macro-F1: 1 process x 16 = {one.best_val_macro_f1:.4f} ({one_seconds:.1f} s in "
          f"process, study {one.wall_seconds:.1f} s); 2 processes x 8 = {two:.4f} "
          f"(torchrun {launched.seconds:.1f} s, study {metrics['wall_seconds']:.1f} s)")
    assert one.best_val_macro_f1 > 0.6  # it learnt (always answering one class: 0.17)
    assert two == pytest.approx(one.best_val_macro_f1, abs=0.01)


@pytest.mark.slow
def test_python_m_relaunches_under_torchrun_and_a_prune_on_rank_0_stops_both_ranks(
    processed, deterministic_model
) -> None:
    pytest.importorskip("transformers")
    from sentiment_pipeline.models.distilbert.trainer import evaluation_steps

    set_params(processed, *fixed_trial(
        deterministic_model, 8, "train.distilbert.n_trials=2", "train.distilbert.epochs=[2, 2]",
        "train.distilbert.evals_per_epoch=2", "train.distilbert.nproc_per_node=2",
    ))

    # What dvc.yaml runs; train.distilbert.nproc_per_node=2 turns it into torchrun.
    launched = Launched(processed, [sys.executable, "-m", MODULE], fault="prune-first-trial")

    assert launched.returncode == 0, launched.output
    assert "relaunching under torchrun" in launched.output
    assert [t.state.name for t in study_trials(processed)] == ["PRUNED", "COMPLETE"]
    trials = [launched.events(rank, "trial") for rank in (0, 1)]
    assert trials[0] == trials[1], trials
    pruned, complete = trials[0]
    first_evaluation = evaluation_steps(18, 2, 2)[0]  # 2 epochs of 144 / (2 x 8) steps
    assert pruned["stopped"] and pruned["evaluations"] == 1
    assert pruned["steps"] == first_evaluation < 18
    assert not complete["stopped"] and complete["steps"] == 18
    assert launched.events(1, "write") == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # An error Optuna would catch and go on from: the other rank is inside a gradient
        # all-reduce, so rank 0 must stop rather than start the next trial.
        ("fail-at-step:0:TrialFailure", "a trial failed on rank 0 during data-parallel training"),
        ("fail-at-step:1:RuntimeError", "probe: rank 1 fails at step 2"),
    ],
)
def test_a_failure_in_the_middle_of_a_trial_ends_every_rank(
    processed, deterministic_model, fault, message
) -> None:
    set_params(processed, *fixed_trial(deterministic_model, 8, "train.distilbert.n_trials=2"))

    launched = torchrun(processed, fault=fault)

    assert launched.returncode != 0, launched.output
    assert message in launched.output
    failing = int(fault.split(":")[1])
    assert launched.events(failing, "raised") == [{"kind": "raised", "step": 2}]
    assert launched.events(0, "trial") == launched.events(1, "trial") == []
    assert not processed.distilbert_metrics.exists()
    assert launched.events(1, "write") == []


@pytest.mark.slow
def test_rank_0_failing_at_an_evaluation_tells_the_other_rank_why(
    processed, deterministic_model
) -> None:
    set_params(processed, *fixed_trial(deterministic_model, 8, "train.distilbert.n_trials=2"))

    launched = torchrun(processed, fault="report-fails")

    assert launched.returncode != 0, launched.output
    assert "probe: the Optuna storage went away" in launched.output
    lost = launched.events(1, "leader_lost")
    assert [event["message"] for event in lost] == [
        "rank 0 stopped the study: RuntimeError: probe: the Optuna storage went away"
    ]
    assert not processed.distilbert_metrics.exists()
    assert launched.events(1, "write") == []



SILENT_LEADER = """
import os, sys, time
from sentiment_pipeline.models.distilbert import distributed

ranks = distributed.ranks(os.environ)
channel = distributed.Channel.open(ranks, "cpu", timeout_s=2)
if ranks.leader:
    time.sleep(60)  # alive, but never sends
try:
    channel.next_trial()
except distributed.LeaderLost as exc:
    print(exc, flush=True)
    sys.exit(3)
"""


@pytest.mark.slow
def test_a_rank_waiting_on_a_silent_rank_0_gives_up_after_the_timeout(tmp_path) -> None:
    script = tmp_path / "silent_leader.py"
    script.write_text(SILENT_LEADER)
    started = time.monotonic()

    done = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script)],
                          capture_output=True, text=True, timeout=HANG_S)

    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode != 0, output
    assert "rank 1 lost rank 0 while waiting for its next message" in output
    assert "sent nothing for 2 s" in output
    assert time.monotonic() - started < 40  # rank 0 sleeps 60 s: torchrun ended it
