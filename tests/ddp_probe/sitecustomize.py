"""A probe in every rank of a data-parallel test run (PYTHONPATH=tests/ddp_probe).

Active only in a process torchrun started (RANK set) with DDP_PROBE_DIR set; inert in the
launcher and everywhere else. It appends JSON lines to DDP_PROBE_DIR/rank<R>.jsonl:
- {"kind": "write", "event", "path"}: every write the rank makes in the project folder (its
  working directory), seen through Python's audit hooks: files opened for writing, folders made,
  renames, removals, copies, and any SQLite database opened (the Optuna and MLflow stores);
- {"kind": "trial", "steps", "stopped", "evaluations", "f1"}: how each trial ended on the rank;
- {"kind": "leader_lost", "message"}: the rank was told to stop by rank 0, or lost it.
DDP_PROBE_FAULT injects one fault: `prune-first-trial` (the study's pruner prunes trial 0 at its
first report), `fail-at-step:<rank>:<TrialFailure|RuntimeError>` (that rank raises in the
middle of trial 0, after its second optimizer step), `report-fails` (rank 0's report to Optuna
raises, as when the storage goes away).
"""

from __future__ import annotations

import os

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Audit events that change the file system (or open a database), and their path arguments.
PATH_EVENTS = {
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1),
    "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,),
    "os.utime": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,),
    "shutil.rmtree": (0,), "sqlite3.connect": (0,),
}


def _install(rank: str, out_dir: str, fault: str) -> None:
    import json
    import sys

    root = os.path.realpath(os.getcwd())
    log = os.open(os.path.join(out_dir, f"rank{rank}.jsonl"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(**event: object) -> None:
        os.write(log, (json.dumps(event, default=str) + "\n").encode())

    def inside(path: object) -> str | None:
        if not isinstance(path, str | bytes | os.PathLike):
            return None
        try:
            full = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return None
        return full if full == root or full.startswith(root + os.sep) else None

    busy = []

    def audit(event: str, args: tuple) -> None:
        if busy or not (event == "open" or event in PATH_EVENTS):
            return
        busy.append(1)
        try:
            if event == "open":
                path, mode, flags = (tuple(args) + (None, None, 0))[:3]
                writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & WRITE_FLAGS
                )
                paths = [path] if writes else []
            else:
                paths = [args[i] for i in PATH_EVENTS[event] if i < len(args)]
            for path in paths:
                if (full := inside(path)) is not None:
                    record(kind="write", event=event, path=os.path.relpath(full, root))
        finally:
            busy.clear()

    sys.addaudithook(audit)

    from sentiment_pipeline.models.distilbert import distributed, trainer

    real_run_trial = trainer.run_trial

    def run_trial(setup, params, reporter=trainer.NULL_REPORTER):  # noqa: ANN001, ANN202
        outcome = real_run_trial(setup, params, reporter)
        record(kind="trial", steps=outcome.optimizer_steps, stopped=outcome.stopped,
               evaluations=outcome.evaluations, f1=outcome.val_macro_f1)
        return outcome

    trainer.run_trial = run_trial

    for name in ("follow", "next_trial"):
        real = getattr(distributed.Channel, name)

        def receiving(self, _real=real):  # noqa: ANN001, ANN202
            try:
                return _real(self)
            except distributed.LeaderLost as exc:
                record(kind="leader_lost", message=str(exc))
                raise

        setattr(distributed.Channel, name, receiving)

    if fault == "prune-first-trial":
        import optuna

        from sentiment_pipeline.tuning import pruning

        class PruneFirstTrial(optuna.pruners.BasePruner):
            def prune(self, study, trial):  # noqa: ANN001, ANN202
                return trial.number == 0

        pruning.make_pruner = lambda *args, **kwargs: PruneFirstTrial()
    elif fault.startswith("fail-at-step:"):
        _, which, error = fault.split(":")
        if which == rank:
            from sentiment_pipeline.tuning.trial import TrialFailure

            real_step_end = trainer.ReportingCallback.on_step_end

            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN202
                if state.global_step == 2:
                    record(kind="raised", step=2)
                    kind = TrialFailure if error == "TrialFailure" else RuntimeError
                    raise kind(f"probe: rank {rank} fails at step 2")
                return real_step_end(self, args, state, control, **kwargs)

            trainer.ReportingCallback.on_step_end = on_step_end
    elif fault == "report-fails" and rank == "0":
        from sentiment_pipeline.tuning import objective

        def report(self, step, value, metrics=None):  # noqa: ANN001, ANN202
            raise RuntimeError("probe: the Optuna storage went away")

        objective.OptunaReporter.report = report


if os.environ.get("DDP_PROBE_DIR") and "RANK" in os.environ:
    _install(os.environ["RANK"], os.environ["DDP_PROBE_DIR"], os.environ.get("DDP_PROBE_FAULT", ""))
