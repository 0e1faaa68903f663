"""Hostile `--set` overrides and params files, as properties (hypothesis).

Each input goes through ConfigurationManager as the CLI does. It must end in a validated
configuration or a ConfigError with a message; any other exception fails. A configuration
that validates is usable: it holds no NaN or infinite number, and its resolved YAML
(`config show`) reads back as the same configuration.

The run's summary counts the inputs and how they ended (property_suites.py sizes the suite).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from property_suites import examples_per_test, outcome
from sentiment_pipeline.config.loading import params_hash, parse_override
from sentiment_pipeline.config.manager import ConfigurationManager, validate_tree
from sentiment_pipeline.errors import ConfigError

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
EXAMPLES = examples_per_test(properties=3)  # the profile's inputs per suite, shared


def leaves(tree: object, prefix: str = "") -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


TREE = yaml.safe_load(REPO_PARAMS.read_text())
KEYS = sorted(leaves(TREE))
SECTIONS = sorted({key.rsplit(".", 1)[0] for key in KEYS if "." in key} | set(TREE))

CHARS = st.one_of(
    st.characters(),
    st.characters(categories=["Cc"]),
    st.characters(categories=["Cs"]),
    st.sampled_from(list("=.:[]{}!&*#|>'\"%@`,- \t\n") + ["\ufeff", "\u2028", "\x85"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(CHARS, max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
YAML_WORDS = st.sampled_from([
    ".nan", ".NaN", "nan", ".inf", "-.inf", "inf", "1e400", "-0", "0x1F", "0o17", "1_000",
    "~", "null", "yes", "no", "on", "off", "y", "[nan, 1]", "[1e-5, .inf]", "[0.5, .nan]",
    "[1, 2, 3]", "[]", "{}", "{a: 1}", "!!python/object:os.system ls", "&a [*a]", "*a",
    "!!binary aGk=", "2026-11-27", "'unterminated", "[" * 5000, "- a\n- b", "a: b: c",
    "!!float x", "!!int 1.5", "\x00", "\ud800", "\ufeff1",
])
RAW_VALUES = st.one_of(
    YAML_WORDS,
    st.text(CHARS, max_size=20),
    VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True, allow_unicode=True)
               .removesuffix("\n...\n").strip()),
    VALUES.map(lambda v: json.dumps(v)),
)
KEY_TEXT = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(KEYS),
    st.sampled_from(SECTIONS),
    st.builds(lambda s, k: f"{s}.{k}", st.sampled_from(SECTIONS), st.text(CHARS, max_size=6)),
    st.builds(lambda k, k2: f"{k}.{k2}", st.sampled_from(KEYS), st.sampled_from(["x", "0"])),
    st.text(CHARS, max_size=12),
    st.sampled_from(["", ".", "data.", ".data", "data..source", " data.source ", "register",
                     "register_.model_name", "data.label_map.-1", "data.label_map.2"]),
)


def like(default: object) -> st.SearchStrategy:
    """Values of the default's kind (an int for an int...), in and out of the allowed range."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.one_of(st.integers(-2, 2 * default + 2), st.integers())
    if isinstance(default, float):
        return st.floats(-1, 2 * default + 1) | st.floats(allow_nan=True, allow_infinity=True)
    if isinstance(default, str):
        return st.one_of(st.just(default), st.text(CHARS, max_size=8))
    if isinstance(default, list) and default:
        return st.lists(like(default[0]), min_size=1, max_size=3)
    if isinstance(default, dict):
        return st.dictionaries(st.text(max_size=4), st.text(max_size=8), max_size=3)
    return st.one_of(st.none(), st.floats(0, 100), st.integers(1, 100))  # null defaults


def lookup(key: str) -> object:
    node: object = TREE
    for part in key.split("."):
        node = node[part]  # type: ignore[index]
    return node


PLAUSIBLE = st.sampled_from(KEYS).flatmap(
    lambda key: like(lookup(key)).map(
        lambda value: f"{key}={yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)}"
        .removesuffix("\n...\n").strip()
    )
)
OVERRIDES = st.one_of(
    PLAUSIBLE,  # a real key and a value of its kind: many validate, some are out of range
    PLAUSIBLE,
    st.builds(lambda k, v: f"{k}={v}", KEY_TEXT, RAW_VALUES),
    st.text(CHARS, max_size=30),
)


def non_finite_numbers(value: object, key: str = "") -> Iterator[str]:
    """The keys whose value (anywhere in a dumped config) is NaN or infinite."""
    if isinstance(value, float) and not math.isfinite(value):
        yield key
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from non_finite_numbers(item, f"{key}.{name}".lstrip("."))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from non_finite_numbers(item, f"{key}[{i}]")


def quoted(override: str) -> str:
    """How an error message quotes the start of an override (a long one is shortened)."""
    return repr(override)[1:-1][:20]


def configure(params: Path, overrides: list[str]) -> ConfigurationManager | None:
    try:
        manager = ConfigurationManager(params, overrides)
    except ConfigError as exc:  # naming the file, or an override as it was given
        outcome(exc, naming=[params.name, *(quoted(item) for item in overrides)])
        return None
    outcome()
    dumped = manager.config.model_dump(mode="python", by_alias=True)
    assert not list(non_finite_numbers(dumped)), "a NaN or infinite number passed validation"
    resolved = yaml.safe_load(manager.to_yaml())  # `config show` reads back as the same config
    again = validate_tree(resolved, "the resolved YAML")
    assert again.model_dump(mode="json") == manager.config.model_dump(mode="json")
    params_hash(manager.config)
    return manager


@settings(max_examples=EXAMPLES)
@given(st.lists(OVERRIDES, min_size=1, max_size=3))
def test_any_overrides_end_in_a_config_or_a_config_error(overrides: list[str]) -> None:
    configure(REPO_PARAMS, overrides)


@settings(max_examples=EXAMPLES)
@given(OVERRIDES)
def test_parse_override_reads_a_key_and_a_value_or_says_why_not(item: str) -> None:
    try:
        parts, _ = parse_override(item)
    except ConfigError as exc:
        outcome(exc, naming=[quoted(item)])
        return
    outcome()
    assert parts and all(parts)


PARAMS_TEXT = st.one_of(
    st.binary(max_size=40),
    st.text(CHARS, max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True).encode()),
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"data: [", b"- 1\n- 2\n",
                     b"data:\n  source: \xe9.csv\n", b"data:\n  min_text_chars: .nan\n",
                     b"\xef\xbb\xbfdata:\n  min_text_chars: 2\n", b"[" * 5000]),
)


@settings(max_examples=EXAMPLES)
@given(PARAMS_TEXT)
def test_any_params_file_ends_in_a_config_or_a_config_error(data: bytes) -> None:
    with TemporaryDirectory() as folder:
        params = Path(folder) / "params.yaml"
        params.write_bytes(data)
        configure(params, [])


# --- regression tests for what the properties found ---------------------------------------------


@pytest.mark.parametrize(
    "override",
    ["train.lightgbm.learning_rate=[.nan, 0.3]", "train.distilbert.lr=[1e-5, .inf]",
     "train.lightgbm.timeout=.inf", "train.baseline.C=.inf", "train.lightgbm.reg_lambda=[1, nan]"],
)
def test_a_nan_or_infinite_number_is_refused_naming_the_key(override: str) -> None:
    # Before: accepted (pydantic takes nan and inf as floats, and `low > high` is False for
    # NaN), so e.g. learning_rate [nan, 0.3] passed validation and failed hours later in tuning.
    key = re.escape(override.split("=")[0])
    with pytest.raises(
        ConfigError, match=rf"\n  - {key}(\.\d)?: got -?(nan|inf); expected a finite number \("
        r"NaN and infinity are not accepted; where a key allows no limit, it takes null\)"
    ):
        ConfigurationManager(REPO_PARAMS, [override])


def test_a_value_nested_too_deeply_is_a_config_error() -> None:
    # Before: RecursionError from PyYAML's parser, a traceback of a thousand frames.
    with pytest.raises(
        ConfigError, match=r"cannot read the value of override 'split\.seed=\[\[\[.*\.\.\. \(5011 "
        r"characters\)' as YAML: it nests lists or mappings too deeply"
    ):
        ConfigurationManager(REPO_PARAMS, ["split.seed=" + "[" * 5000])


@pytest.mark.parametrize("value", ["!!int 1.5", "!!float x"])
def test_a_yaml_tag_that_does_not_fit_its_value_is_a_config_error(value: str) -> None:
    # Before: ValueError ("invalid literal for int() with base 10: '1.5'") as a traceback.
    with pytest.raises(ConfigError, match=r"cannot read the value of override 'split\.seed=!!"):
        ConfigurationManager(REPO_PARAMS, [f"split.seed={value}"])


def test_a_params_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    # Before: UnicodeDecodeError from Path.read_text, as a traceback.
    params = tmp_path / "params.yaml"
    params.write_bytes(b"data:\n  source: caf\xe9.csv\n")

    with pytest.raises(
        ConfigError, match=r"params\.yaml is not valid YAML: unacceptable character #x00e9: "
        r"invalid continuation byte\n  in \"<byte string>\", position 19"
    ):
        ConfigurationManager(params)
