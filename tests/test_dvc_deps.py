"""dvc.yaml's code deps are truthful: each stage depends on every source file its module reaches.

The stage's module comes from its `cmd` (`python -m sentiment_pipeline.x.y`); its imports are
walked statically (static_imports.py), so an import inside a function or under TYPE_CHECKING
counts. A deps entry covers a file when it is the file or a folder above it.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.stages import STAGES, config_of, stage
from static_imports import Package, has_code

REPO = Path(__file__).resolve().parents[1]
MODULE_CMD = re.compile(r"python -m (sentiment_pipeline(?:\.\w+)+)")


def stage_module(stage: dict[str, Any]) -> str:
    found = MODULE_CMD.search(stage["cmd"])
    assert found, f"cmd {stage['cmd']!r} does not run `python -m sentiment_pipeline.<module>`"
    return found.group(1)


def code_deps_problems(name: str, stage: dict[str, Any], root: Path) -> list[str]:
    """What is wrong with the code deps of one stage of a dvc.yaml in `root` (nothing: [])."""
    package = Package(root / "src")
    deps = [PurePosixPath(d) for d in stage.get("deps", [])]
    code_deps = [dep for dep in deps if dep.parts[:1] == ("src",)]
    problems = [
        f"{name}: deps entry {dep} does not exist" for dep in code_deps if not (root / dep).exists()
    ]
    reached = package.reached(stage_module(stage))
    files = {
        PurePosixPath(package.file(module).relative_to(root).as_posix()): module
        for module in reached
        if has_code(package.file(module))
    }

    def covers(dep: PurePosixPath, file: PurePosixPath) -> bool:
        return dep == file or dep in file.parents

    for file, module in sorted(files.items()):
        if not any(covers(dep, file) for dep in deps):
            problems.append(
                f"{name}: {file} is not in its deps ({module} is imported by {reached[module]})"
            )
    for dep in code_deps:
        if (root / dep).exists() and not any(covers(dep, file) for file in files):
            problems.append(f"{name}: deps entry {dep} holds no module the stage imports")
    return problems


def test_every_stage_depends_on_the_code_it_imports() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    problems = [p for name, stage in stages.items() for p in code_deps_problems(name, stage, REPO)]

    assert not problems, "dvc.yaml misses code deps:\n  " + "\n  ".join(problems)


def test_the_stage_table_is_dvc_yaml_and_every_stage_is_named_after_its_module() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    assert {name: stage_module(stage) for name, stage in stages.items()} == STAGES
    assert list(stages) == list(STAGES)  # the same (topological) order
    for name, module in STAGES.items():
        found = stage(name)
        assert found.name == name == module.rpartition(".")[2]
        assert found.run.__module__ == module


def test_each_stage_reads_the_section_dvc_tracks_and_its_model_is_that_sections() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    tree = PipelineConfig()

    for name in STAGES:
        found = stage(name)
        sections = found.section if isinstance(found.section, tuple) else (found.section,)
        assert isinstance(config_of(found, tree), found.config), name
        for key in stages[name].get("params", []):
            assert any(key == s or key.startswith(f"{s}.") for s in sections), (name, key)


def test_a_missing_file_is_named_with_the_module_that_imports_it() -> None:
    package = Package(REPO / "src")
    module = "sentiment_pipeline.data.prepare"
    files = [
        package.file(m).relative_to(REPO).as_posix()
        for m in package.reached(module)
        if has_code(package.file(m))
    ]
    assert "src/sentiment_pipeline/io.py" in files
    stage = {
        "cmd": f"python -m {module}",
        "deps": [f for f in files if f != "src/sentiment_pipeline/io.py"],
    }

    problems = code_deps_problems("prepare", stage, REPO)

    assert problems == [
        "prepare: src/sentiment_pipeline/io.py is not in its deps (sentiment_pipeline.io is "
        "imported by sentiment_pipeline.data.prepare)"
    ]


def test_an_absent_or_needless_deps_entry_is_named() -> None:
    stage = {
        "cmd": "python -m sentiment_pipeline.data.prepare",
        "deps": [
            "src/sentiment_pipeline",
            "src/sentiment_pipeline/gone.py",
            "src/sentiment_pipeline/registry/register_model.py",
            "data/interim/validated.parquet",  # data deps are not this test's business
        ],
    }

    assert code_deps_problems("prepare", stage, REPO) == [
        "prepare: deps entry src/sentiment_pipeline/gone.py does not exist",
        "prepare: deps entry src/sentiment_pipeline/registry/register_model.py holds no module "
        "the stage imports",
    ]


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A project whose package reaches each module in a different way."""
    pkg = tmp_path / "src" / "sentiment_pipeline"
    files = {
        "__init__.py": '"""Toy."""\n__version__ = "1"\n',
        "stage.py": (
            "from typing import TYPE_CHECKING\n"
            "from . import sibling\n"
            "from sentiment_pipeline.sub import leaf\n"
            "if TYPE_CHECKING:\n"
            "    from .typed import Thing\n"
            "def run():\n"
            "    from .lazy import go\n"
            "    import numpy\n"
        ),
        "sibling.py": "A = 1\n",
        "typed.py": "class Thing: ...\n",
        "lazy.py": "from .sub.leaf import VALUE\ndef go(): ...\n",
        "unused.py": "X = 1\n",
        "sub/__init__.py": "from sentiment_pipeline.sub import helper\n",
        "sub/helper.py": "from ..deep import deeper\n",
        "sub/leaf.py": "VALUE = 1\n",
        "deep/__init__.py": '"""Docstring only."""\n',
        "deep/deeper.py": "B = 2\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return tmp_path


def test_imports_are_walked_in_functions_under_type_checking_and_relative(toy: Path) -> None:
    reached = Package(toy / "src").reached("sentiment_pipeline.stage")

    assert reached == {
        "sentiment_pipeline.stage": None,
        "sentiment_pipeline": None,
        "sentiment_pipeline.sibling": "sentiment_pipeline.stage",
        "sentiment_pipeline.sub": "sentiment_pipeline.stage",
        "sentiment_pipeline.sub.leaf": "sentiment_pipeline.stage",
        "sentiment_pipeline.typed": "sentiment_pipeline.stage",
        "sentiment_pipeline.lazy": "sentiment_pipeline.stage",
        "sentiment_pipeline.sub.helper": "sentiment_pipeline.sub",
        "sentiment_pipeline.deep": "sentiment_pipeline.sub.helper",
        "sentiment_pipeline.deep.deeper": "sentiment_pipeline.sub.helper",
    }


def test_a_file_without_code_needs_no_deps_entry(toy: Path) -> None:
    stage = {
        "cmd": "python -m sentiment_pipeline.stage",
        "deps": ["src/sentiment_pipeline/stage.py", "src/sentiment_pipeline/sub"],
    }

    problems = code_deps_problems("toy", stage, toy)

    # sentiment_pipeline/__init__.py and deep/__init__.py hold no code; the rest must be listed
    assert [p.split(" is not")[0] for p in problems] == [
        "toy: src/sentiment_pipeline/deep/deeper.py",
        "toy: src/sentiment_pipeline/lazy.py",
        "toy: src/sentiment_pipeline/sibling.py",
        "toy: src/sentiment_pipeline/typed.py",
    ]
