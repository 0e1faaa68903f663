"""Benchmark: distributed tuning on PostgreSQL — trials per hour with 1, 2 and 3 worker processes,
and how long until a killed worker's trial is retried by another.

Each arm starts N `sentiment-pipeline tune lightgbm --storage postgresql+psycopg://...` worker
processes together on a new database (one project folder each, as on N machines) and a shared
real `mlflow server`, on a tiny LightGBM (synthetic 2,000-text split, 100 rounds at most, on one
thread). Reported per arm: the wall time from starting the workers to the last one exiting
(process start-up and the stage's publishing included), trials per hour over that, and trials
per hour within the study (first trial start to last trial end, from Optuna's timestamps).

The kill arm starts a worker whose first trial hangs and a normal one together (heartbeat every
1 s, grace 3 s), SIGKILLs the hanging one mid-trial, and measures the seconds from the kill to
the start of the retried trial on the other worker (about grace + one heartbeat interval; with
the defaults, 60 s and 120 s, expect about 2-3 minutes).

Needs the PostgreSQL server binaries (apt-get install postgresql); run as root, the server runs as
the `postgres` user.

    python benchmarks/bench_distributed_tuning.py [--trials 12] [--workers 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna

from common import REPO, WORK, print_table, write_result

# The test helpers start the servers (PostgreSQL as its own user, mlflow server) and make the data.
sys.path.insert(0, str(REPO / "tests"))
from mlflow_server import mlflow_server  # noqa: E402
from pg_server import postgres_server  # noqa: E402
from synthetic import LABELS, make_processed_splits  # noqa: E402

TINY = (
    "train.lightgbm.threads=1",
    "train.lightgbm.parallel_trials=1",
    "train.lightgbm.max_estimators=100",
    "train.lightgbm.early_stopping_rounds=20",
    "train.lightgbm.tfidf.max_features=2000",
    "train.lightgbm.num_leaves=[4,31]",
)
HANG = """
import os, sys, time
from sentiment_pipeline.models import train_lightgbm
def hang(params, reporter, **kwargs):
    open(os.environ["TRIAL_STARTED"], "w").close()
    time.sleep(3600)
train_lightgbm.fit_one = hang
from sentiment_pipeline.cli import app
app(sys.argv[1:], prog_name="sentiment-pipeline")
"""
RUN = "from sentiment_pipeline.cli import app; app()"


def project(root: Path, rows: int) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    processed = root / "data" / "processed"
    processed.mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    for name, frame in make_processed_splits(rows).items():
        frame.to_parquet(processed / f"{name}.parquet", index=False)
    (processed / "labels.json").write_text(json.dumps(LABELS))
    return root


def start(folder: Path, storage: str, n_trials: int, env: dict[str, str],
          code: str = RUN) -> subprocess.Popen:
    args = [sys.executable, "-c", code, "tune", "lightgbm", "--storage", storage]
    for key in (*TINY, f"train.lightgbm.n_trials={n_trials}"):
        args += ["--set", key]
    return subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        out, _ = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise SystemExit(f"a worker failed:\n{out[-3000:]}")


def study_of(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def throughput(pg, env: dict[str, str], workers: int, n_trials: int, rows: int) -> dict:  # noqa: ANN001
    storage = pg.url(pg.create_database("bench"))
    folders = [project(WORK / "distributed" / f"w{workers}-{i}", rows) for i in range(workers)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    wait_all([start(folder, storage, n_trials, env) for folder in folders])
    wall = time.perf_counter() - started
    study = study_of(storage)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,
                                    optuna.trial.TrialState.PRUNED))
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    inside = (last - first).total_seconds()
    return {
        "workers": workers,
        "finished_trials": len(done),
        "all_trials": len(study.trials),
        "distinct_params": len({tuple(sorted(t.params.items())) for t in done}),
        "wall_s": round(wall, 2),
        "trials_per_hour_wall": round(len(done) / wall * 3600),
        "study_s": round(inside, 2),
        "trials_per_hour_study": round(len(done) / inside * 3600),
        "load_before": round(load, 2),
    }


def kill_retry(pg, env: dict[str, str], rows: int, interval: int, grace: int) -> dict:  # noqa: ANN001
    storage = pg.url(pg.create_database("bench_kill"))
    beats = {**env, "SENTIMENT_PIPELINE_OPTUNA_HEARTBEAT_INTERVAL": str(interval),
             "SENTIMENT_PIPELINE_OPTUNA_GRACE_PERIOD": str(grace)}
    marker = WORK / "distributed" / "trial-started"
    marker.unlink(missing_ok=True)
    victim = start(project(WORK / "distributed" / "victim", rows), storage, 4,
                   {**beats, "TRIAL_STARTED": str(marker)}, HANG)
    survivor = start(project(WORK / "distributed" / "survivor", rows), storage, 4, beats)
    while not marker.exists():
        if victim.poll() is not None:
            raise SystemExit(f"the victim exited:\n{victim.communicate()[0][-3000:]}")
        time.sleep(0.05)
    killed_at = time.time()
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    wait_all([survivor])
    study = study_of(storage)
    (retry,) = [t for t in study.trials if "failed_trial" in t.system_attrs]
    delay = retry.datetime_start.timestamp() - killed_at
    return {
        "heartbeat_interval_s": interval,
        "grace_period_s": grace,
        "kill_to_retry_start_s": round(delay, 2),
        "retried_trial": retry.number,
        "retry_of": retry.system_attrs["failed_trial"],
        "retry_state": retry.state.name,
        "finished_trials": len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,
                                                        optuna.trial.TrialState.PRUNED))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", type=int, default=2000, help="synthetic texts in all splits")
    args = parser.parse_args()
    with postgres_server() as pg, mlflow_server(WORK / "distributed" / "mlflow") as url:
        env = {**os.environ, "MLFLOW_TRACKING_URI": url}
        env.pop("SENTIMENT_PIPELINE_OPTUNA_STORAGE", None)
        rows = [throughput(pg, env, n, args.trials, args.rows) for n in args.workers]
        print_table(rows)
        kill = kill_retry(pg, env, args.rows, interval=1, grace=3)
        print_table([kill])
    path = write_result("distributed_tuning", {
        "what": "tune lightgbm workers (processes) on one PostgreSQL study, tiny LightGBM, CPU",
        "n_trials": args.trials, "rows": args.rows, "overrides": list(TINY),
        "throughput": rows, "kill": kill,
    })
    print(f"written {path}")


if __name__ == "__main__":
    main()
