"""The `onnx` kind: a transformer exported to ONNX (fp32 or int8), run by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from sentiment_pipeline.models.artifacts.fast_tokenizer import FastTokenizer, load_tokenizer
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    TokenizedModel,
    max_length_param,
    resolve_file,
)

MODEL_FILE = "model.onnx"
DEFAULT_MAX_LENGTH = 128
DEFAULT_BATCH_SIZE = 64
# The inputs an exported classifier may declare; each is fed from the tokenizer's output.
FEEDABLE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxModel(TokenizedModel):
    """An exported sequence classifier in an ONNX Runtime session, with its tokenizer."""

    def __init__(
        self,
        manifest: ModelManifest,
        session: Any,
        tokenizer: FastTokenizer,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(manifest, tokenizer, max_length=max_length, batch_size=batch_size)
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def logits(self, batch: Any) -> np.ndarray:
        feed = {name: _int64(batch, name) for name in self.input_names}
        return self.session.run(None, feed)[0]


def _int64(batch: Any, name: str) -> np.ndarray:
    if name == "token_type_ids" and name not in batch:  # one segment: all zeros
        return np.zeros_like(batch["input_ids"], dtype=np.int64)
    return np.asarray(batch[name], dtype=np.int64)


def session_options(threads: int | None) -> ort.SessionOptions:
    """One thread pool of `threads` (None: ONNX Runtime's default, all cores), no inter-op pool,
    no spinning."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads sleep instead of spinning: the process also runs an event loop, a
    # batcher and the tokenizer, and spinning threads take their cores. Serving the int8 MiniLM
    # at concurrency 32 on 2 cores: 422 requests/s against 373 with spinning (BENCHMARKS.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def open_session(file: Path, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session of `file`; a damaged or unreadable graph is one ArtifactError."""
    try:
        return ort.InferenceSession(
            str(file), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... kinds on damage
        raise ArtifactError(
            f"cannot load the ONNX model {file} ({type(exc).__name__}: {exc}); it is damaged or "
            "was not written by this pipeline: export it again (sentiment-pipeline export onnx, "
            "dvc repro export_onnx) or restore the folder (dvc checkout)"
        ) from exc


def check_session(session: Any, manifest: ModelManifest, directory: Path) -> None:
    """Refuse a graph whose inputs we cannot feed or whose output width is not len(labels)."""
    names = [i.name for i in session.get_inputs()]
    unknown = [n for n in names if n not in FEEDABLE_INPUTS]
    if unknown or "input_ids" not in names:
        raise ArtifactError(
            f"{directory / MODEL_FILE} takes the inputs {names}; an exported classifier takes "
            f"input_ids and optionally {list(FEEDABLE_INPUTS[1:])}: export it again"
        )
    outputs = session.get_outputs()
    width = outputs[0].shape[-1] if outputs and outputs[0].shape else None
    if not isinstance(width, int) or width != len(manifest.labels):
        raise ArtifactError(
            f"{directory / MODEL_FILE} outputs {width} scores per text but its manifest lists "
            f"{len(manifest.labels)} labels {manifest.labels}; export the model again"
        )


def check_files(directory: Path, manifest: ModelManifest, symlink_root: Path | None) -> Path:
    """Every file of the folder stays inside it; every file the manifest names exists.

    Returns the graph file. ONNX Runtime itself refuses external data outside the folder.
    """
    for item in sorted(directory.iterdir()):
        resolve_file(directory, item.name, symlink_root)
    files = {"model": MODEL_FILE, **manifest.files}
    for role, name in files.items():
        if not resolve_file(directory, name, symlink_root).is_file():
            raise ArtifactError(
                f"{directory} lists {name} as its {role} in its manifest but the file is "
                "missing; export the model again or restore the folder (dvc checkout)"
            )
    return resolve_file(directory, files["model"], symlink_root)


def load(
    directory: Path,
    manifest: ModelManifest,
    *,
    trusted: bool,
    symlink_root: Path | None,
    threads: int | None = None,
) -> OnnxModel:
    """The OnnxModel of an `onnx` model folder.

    An ONNX graph runs no Python code and the tokenizer is read from JSON (tokenizer.json, by the
    `tokenizers` library), so `trusted` changes nothing; every file of the folder (model.onnx,
    its external-data file, the tokenizer) must stay inside it.
    threads: ONNX Runtime's intra-op threads (None: all cores).
    """
    graph = check_files(directory, manifest, symlink_root)
    max_length = max_length_param(manifest, directory, DEFAULT_MAX_LENGTH)
    tokenizer = load_tokenizer(directory, symlink_root)
    session = open_session(graph, threads)
    check_session(session, manifest, directory)
    return OnnxModel(manifest, session, tokenizer, max_length=max_length)
