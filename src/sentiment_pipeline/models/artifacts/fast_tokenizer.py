"""The tokenizer of an onnx model folder: its tokenizer.json, run by the `tokenizers` library."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from sentiment_pipeline.errors import shortened
from sentiment_pipeline.models.artifacts.manifest import ArtifactError, resolve_file

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
# The folder is untrusted input: its JSON is read only up to these sizes. A vocabulary of
# 250k tokens (XLM-R) takes 17 MB of tokenizer.json; the two settings files take a few kB.
MAX_TOKENIZER_BYTES = 256_000_000
MAX_SETTINGS_BYTES = 1_000_000
SIDES = ("right", "left")
# What the inputs are padded with (transformers' defaults: no segment id, masked out).
PAD_VALUES = {"token_type_ids": 0, "attention_mask": 0}
EXPORT_AGAIN = (
    "export the model again (sentiment-pipeline export onnx --model <its transformers folder>, "
    "or dvc repro export_onnx), which writes it"
)


class FastTokenizer:
    """What a TokenizedModel calls on its tokenizer, done as transformers' fast tokenizers do.

    A call encodes texts (or text pairs) with special tokens, optionally truncated to
    `max_length` tokens; `pad` pads a batch of encodings to its longest, with an attention mask.
    Both give the input_ids, token_type_ids and attention_mask that AutoTokenizer gives for
    the same tokenizer.json.
    """

    def __init__(
        self, backend: Tokenizer, *, pad_id: int, padding_side: str = "right",
        truncation_side: str = "right",
    ) -> None:
        self.backend = backend
        self.pad_id = pad_id
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        backend.no_padding()
        backend.no_truncation()
        self.truncating: int | None = None  # the max_length the backend truncates to now

    def __call__(
        self,
        text: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        truncation: bool = False,
        max_length: int | None = None,
    ) -> dict[str, list[list[int]]]:
        if truncation and max_length is None:
            raise ValueError("truncation needs max_length")
        if text_pair is not None and len(text_pair) != len(text):
            raise ValueError(f"{len(text)} texts but {len(text_pair)} text pairs")
        self.truncate(max_length if truncation else None)
        inputs = list(text) if text_pair is None else list(zip(text, text_pair, strict=True))
        encodings = self.backend.encode_batch(inputs, add_special_tokens=True)
        return {
            "input_ids": [e.ids for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
        }

    def truncate(self, max_length: int | None) -> None:
        # Set only on a change: the backend's setting is shared by the threads that encode.
        if max_length == self.truncating:
            return
        if max_length is None:
            self.backend.no_truncation()
        else:
            self.backend.enable_truncation(
                max_length, strategy="longest_first", direction=self.truncation_side
            )
        self.truncating = max_length

    def pad(
        self, encoded: Mapping[str, Sequence[Sequence[int]]], return_tensors: str = "np"
    ) -> dict[str, np.ndarray]:
        """Pad every row to the longest (int64 arrays); an attention mask is added if absent."""
        if return_tensors != "np":
            raise ValueError(f"return_tensors={return_tensors!r}; this tokenizer gives 'np'")
        rows = encoded["input_ids"]
        columns = {name: encoded[name] for name in ("input_ids", "token_type_ids",
                                                    "attention_mask") if name in encoded}
        columns.setdefault("attention_mask", [[1] * len(ids) for ids in rows])
        width = max((len(ids) for ids in rows), default=0)
        padded = {}
        for name, values in columns.items():
            out = np.full((len(rows), width), PAD_VALUES.get(name, self.pad_id), dtype=np.int64)
            for i, row in enumerate(values):
                start = 0 if self.padding_side == "right" else width - len(row)
                out[i, start:start + len(row)] = row
            padded[name] = out
        return padded


def read_settings(directory: Path, name: str, symlink_root: Path | None) -> dict[str, Any]:
    """A tokenizer settings file of the folder as a dict ({} when there is none)."""
    path = resolve_file(directory, name, symlink_root)
    if not path.is_file():
        return {}
    size = path.stat().st_size
    if size > MAX_SETTINGS_BYTES:
        raise ArtifactError(
            f"{directory / name} has {size:,} bytes; a tokenizer settings file has a few kB "
            f"(at most {MAX_SETTINGS_BYTES:,} are read): {EXPORT_AGAIN}"
        )
    try:
        settings = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(
            f"{directory / name} is not valid JSON ({exc}): {EXPORT_AGAIN}"
        ) from exc
    if not isinstance(settings, dict):
        raise ArtifactError(
            f"{directory / name} holds a {type(settings).__name__}, not a JSON object: "
            f"{EXPORT_AGAIN}"
        )
    return settings


def token_text(value: Any, where: str) -> str | None:
    """A special token as transformers writes it: a string, or an object with its "content"."""
    text = value.get("content") if isinstance(value, dict) else value
    if value is None or isinstance(text, str):
        return text
    raise ArtifactError(
        f"{where} is {shortened(repr(value))}; expected a token (a string, or an object with its "
        f'"content"): {EXPORT_AGAIN}'
    )


def side(settings: dict[str, Any], key: str, where: Path) -> str:
    value = settings.get(key, "right")
    if value not in SIDES:
        raise ArtifactError(
            f"{where} sets {key} to {shortened(repr(value))}; expected one of {list(SIDES)}: "
            f"{EXPORT_AGAIN}"
        )
    return value


def load_tokenizer(directory: Path, symlink_root: Path | None = None) -> FastTokenizer:
    """The FastTokenizer of a model folder: tokenizer.json with the pad token and the padding
    and truncation sides of tokenizer_config.json (special_tokens_map.json's pad token first).

    Every problem with the files is one ArtifactError naming the file.
    """
    file = resolve_file(directory, TOKENIZER_FILE, symlink_root)
    if not file.is_file():
        raise ArtifactError(
            f"{directory} has no {TOKENIZER_FILE}, from which an ONNX model's tokenizer is read "
            f"(without transformers): {EXPORT_AGAIN}"
        )
    size = file.stat().st_size
    if size > MAX_TOKENIZER_BYTES:
        raise ArtifactError(
            f"{file} has {size:,} bytes, more than the {MAX_TOKENIZER_BYTES:,} read from a "
            f"tokenizer: {EXPORT_AGAIN}"
        )
    try:
        backend = Tokenizer.from_file(str(file))
    except Exception as exc:  # the library raises a bare Exception for every parse error
        raise ArtifactError(
            f"cannot read the tokenizer {file} ({type(exc).__name__}: {exc}): {EXPORT_AGAIN}"
        ) from exc
    config = read_settings(directory, CONFIG_FILE, symlink_root)
    special = read_settings(directory, SPECIAL_TOKENS_FILE, symlink_root)
    pad = token_text(special.get("pad_token"), f"pad_token of {directory / SPECIAL_TOKENS_FILE}")
    pad = pad or token_text(config.get("pad_token"), f"pad_token of {directory / CONFIG_FILE}")
    pad_id = None if pad is None else backend.token_to_id(pad)
    if pad_id is None:
        raise ArtifactError(
            f"{directory / CONFIG_FILE} names no padding token of {file} (pad_token is "
            f"{shortened(repr(pad))}); texts of a batch are padded with it: {EXPORT_AGAIN}"
        )
    return FastTokenizer(
        backend,
        pad_id=pad_id,
        padding_side=side(config, "padding_side", directory / CONFIG_FILE),
        truncation_side=side(config, "truncation_side", directory / CONFIG_FILE),
    )
