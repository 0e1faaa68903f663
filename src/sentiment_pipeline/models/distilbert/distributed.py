"""Data-parallel training (torchrun, accelerate launch): ranks, relaunching, rank 0 leading."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.tuning.trial import TrialReporter

logger = logging.getLogger(__name__)

# How long a rank waits in any collective (a gradient all-reduce, a message from rank 0) before
# it gives up with an error: the HF Trainer's default ddp_timeout. It only matters when a rank
# hangs without exiting; a rank that exits makes torchrun stop the others at once.
TIMEOUT_S = 1800
# A launcher (torchrun, accelerate launch) started this process when it set either of these.
LAUNCHER_VARIABLES = ("WORLD_SIZE", "LOCAL_RANK")
NOT_A_JOB = (
    "they are set by torchrun / accelerate launch; unset them to train in one process"
)


class RankFailed(PipelineError):
    """A trial failed on rank 0 while the ranks trained together: the study cannot go on."""


class LeaderLost(PipelineError):
    """A rank other than 0 was told to stop by rank 0, or lost it."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel job; rank 0 of 1 without a launcher."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        """Rank 0: the one that asks Optuna, decides prunes and writes every output."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def ranks(environ: Mapping[str, str]) -> Ranks:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun and accelerate launch set them."""
    values: dict[str, int] = {}
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = environ.get(name, "").strip()
        try:
            values[name] = int(raw) if raw else default
        except ValueError:
            raise ConfigError(
                f"environment variable {name}={raw!r} is not an integer; {NOT_A_JOB}"
            ) from None
    rank, world, local = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(
            f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} is no process of a job "
            f"(expected 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0); {NOT_A_JOB}"
        )
    return Ranks(rank, world, local)


def under_launcher(environ: Mapping[str, str]) -> bool:
    """Whether torchrun / accelerate launch started this process (then it never relaunches)."""
    return any(name in environ for name in LAUNCHER_VARIABLES)


def processes(setting: int | Literal["auto"], cuda_devices: int) -> int:
    """Processes per node that train.distilbert.nproc_per_node asks for: 'auto' is one per
    visible CUDA device (one without CUDA)."""
    if setting == "auto":
        return max(1, cuda_devices)
    return setting


def launch_command(nproc: int, module: str, argv: Sequence[str], python: str) -> list[str]:
    """torchrun on this node (--standalone: a free port, no rendezvous server to name) running
    `python -m module argv` in `nproc` processes."""
    return [
        python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", module, *argv,
    ]


def relaunch_command(
    setting: int | Literal["auto"],
    environ: Mapping[str, str],
    cuda_devices: Callable[[], int],
    module: str,
    argv: Sequence[str],
    python: str,
) -> list[str] | None:
    """The torchrun command to re-execute this stage under, or None to run it here: when the
    setting asks for one process, or a launcher already started this one."""
    if under_launcher(environ):
        return None
    nproc = processes(setting, cuda_devices() if setting == "auto" else 0)
    if nproc == 1:
        return None
    return launch_command(nproc, module, argv, python)


# --- rank 0 leads, the other ranks follow --------------------------------------------------------


class Channel:
    """Rank 0's messages to the other ranks, on a gloo group of their own (CPU objects, whatever
    backend the gradients use).

    Rank 0 sends at points every rank reaches in the same order: before each trial (its
    parameters), at each evaluation of a trial (go on, or stop: pruned) and after the study (the
    end). Where rank 0 fails at such a point it sends an abort with the reason instead, so the
    other ranks stop with it rather than wait. A failure in the middle of training (between two
    of these points, while the ranks exchange gradients) leaves them inside the Trainer's
    collectives, out of step: rank 0 then stops the stage, and the launcher ends the other ranks
    when it exits (or they give up after TIMEOUT_S).
    """

    def __init__(self, ranks: Ranks, group: Any, timeout_s: float = TIMEOUT_S) -> None:
        self.ranks = ranks
        self.group = group
        self.timeout_s = timeout_s
        self.training = False  # rank 0: in a trial, where a failure leaves the ranks out of step
        self.closed = False  # rank 0: the end or an abort was sent

    @classmethod
    def open(cls, ranks: Ranks, device: str, timeout_s: float = TIMEOUT_S) -> Channel:
        """Join the job's process group (NCCL on CUDA, gloo on the CPU, unless a launcher's
        code made one already) and make the channel's gloo group."""
        import torch
        import torch.distributed as dist

        timeout = timedelta(seconds=timeout_s)
        if device == "cuda":
            if ranks.local_rank >= torch.cuda.device_count():
                raise ConfigError(
                    f"LOCAL_RANK={ranks.local_rank} but {torch.cuda.device_count()} CUDA "
                    "device(s) are visible; start at most one process per GPU "
                    "(train.distilbert.nproc_per_node, torchrun --nproc-per-node)"
                )
            torch.cuda.set_device(ranks.local_rank)
        try:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=timeout)
            group = dist.new_group(backend="gloo", timeout=timeout)
        except (ValueError, RuntimeError) as exc:
            raise PipelineError(
                f"rank {ranks.rank} of {ranks.world_size} cannot join the data-parallel job "
                f"({type(exc).__name__}: {exc}); start the stage with torchrun or accelerate "
                "launch (they set MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE), or unset "
                "WORLD_SIZE and LOCAL_RANK to train in one process"
            ) from exc
        return cls(ranks, group, timeout_s)

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    # --- the wire ------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        import torch.distributed as dist

        if not self.ranks.leader:
            raise RuntimeError("only rank 0 sends on the channel")
        dist.broadcast_object_list([message], src=0, group=self.group)

    def receive(self) -> dict[str, Any]:
        import torch.distributed as dist

        box: list[Any] = [None]
        try:
            dist.broadcast_object_list(box, src=0, group=self.group)
        except RuntimeError as exc:  # gloo: rank 0's connection closed, or TIMEOUT_S passed
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LeaderLost(
                f"rank {self.ranks.rank} lost rank 0 while waiting for its next message "
                f"({reason}): rank 0 exited, or sent nothing for {self.timeout_s:g} s; its "
                "output says why"
            ) from exc
        return box[0]

    # --- rank 0 ----------------------------------------------------------------------------------

    def abort(self, exc: BaseException) -> None:
        self.closed = True
        self.send({"op": "abort", "reason": f"{type(exc).__name__}: {exc}"})

    def decide(self, decision: Callable[[], bool]) -> bool:
        """Rank 0 at an evaluation: `decision()` (stop: pruned) sent to every rank."""
        try:
            stop = decision()
        except Exception as exc:
            self.abort(exc)
            raise
        self.send({"op": "stop" if stop else "go"})
        return stop

    @contextlib.contextmanager
    def trial(self, params: Mapping[str, Any], reporter: TrialReporter) -> Iterator[TrialReporter]:
        """Rank 0 runs one trial: its parameters go to every rank, and every prune decision.

        A failure inside the trial that no abort told the other ranks about stops the stage
        (RankFailed, which Optuna does not catch): the study cannot go on without them.
        """
        self.send({"op": "trial", "params": dict(params)})
        self.training = True
        try:
            yield LeadingReporter(self, reporter)
        except Exception as exc:
            if self.closed:
                raise
            raise RankFailed(
                f"a trial failed on rank 0 during data-parallel training ({type(exc).__name__}: "
                f"{exc}); the other ranks cannot leave a trial half done, so the stage stops "
                "(the launcher ends them); fix the cause and rerun, the study resumes"
            ) from exc
        self.training = False

    @contextlib.contextmanager
    def leading(self) -> Iterator[None]:
        """Rank 0's study: afterwards the other ranks are told it ended (or why it failed)."""
        try:
            yield
        except Exception as exc:
            if not (self.closed or self.training):
                self.abort(exc)
            raise
        if not self.closed:
            self.closed = True
            self.send({"op": "end"})

    # --- the other ranks -------------------------------------------------------------------------

    def next_trial(self) -> dict[str, Any] | None:
        """The parameters of the trial rank 0 starts next, or None when its study ended."""
        message = self.receive()
        if message["op"] == "trial":
            return dict(message["params"])
        if message["op"] == "end":
            return None
        return self._unexpected(message, "a trial or the end")

    def follow(self) -> bool:
        """At an evaluation: rank 0's decision (True: stop, pruned)."""
        message = self.receive()
        if message["op"] in ("go", "stop"):
            return message["op"] == "stop"
        return self._unexpected(message, "go or stop")

    def _unexpected(self, message: Mapping[str, Any], expected: str) -> Any:
        if message.get("op") == "abort":
            raise LeaderLost(f"rank 0 stopped the study: {message.get('reason')}")
        raise RuntimeError(f"rank {self.ranks.rank} expected {expected} from rank 0, got {message}")


class LeadingReporter:
    """Rank 0's reporter: the tuning core's, each decision also sent to the other ranks."""

    def __init__(self, channel: Channel, inner: TrialReporter) -> None:
        self.channel = channel
        self.inner = inner

    def report(
        self, step: int, value: float, metrics: Mapping[str, float | None] | None = None
    ) -> bool:
        return self.channel.decide(lambda: self.inner.report(step, value, metrics))

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        self.inner.advance(done, total, samples)


class FollowingReporter:
    """The reporter of the other ranks: records nothing, stops when rank 0 says so."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def report(
        self, step: int, value: float, metrics: Mapping[str, float | None] | None = None
    ) -> bool:
        return self.channel.follow()

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        return None
