"""Write the pinned requirement files the container images install (deploy/requirements/)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "requirements"
# image -> the extras of this package it installs; torch comes from its own wheel source
# (the Dockerfile's TORCH_* build arguments), so it is left out of every file.
IMAGES = {"serve": "", "pipeline": "pipeline,transformers,onnx,postgres"}
LEFT_OUT = {"sentiment-pipeline", "torch"}


def torch_spec() -> str:
    """The Dockerfile's default TORCH_SPEC (the CPU build): what the pipeline's pins are
    resolved against, so that no CUDA library (nvidia-*, triton) is pinned beside it."""
    found = re.search(r"^ARG TORCH_SPEC=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    if found is None:
        raise SystemExit("Dockerfile: no `ARG TORCH_SPEC=...` line")
    return found[1]


def resolved(extras: str) -> dict[str, str]:
    """What pip would install for the package with `extras` into an empty environment."""
    target = [f"{ROOT}[{extras}]", torch_spec()] if extras else [str(ROOT)]
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", "-", *target],
        check=True, capture_output=True, text=True,
    ).stdout
    found = {}
    for item in json.loads(report)["install"]:
        name = item["metadata"]["name"].lower().replace("_", "-")
        found[name] = item["metadata"]["version"]
    return found


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for image, extras in IMAGES.items():
        pins = {n: v for n, v in resolved(extras).items() if n not in LEFT_OUT}
        lines = [f"# The `{image}` image's packages, pinned: regenerate with python deploy/lock.py",
                 f"# (the package{f' with [{extras}]' if extras else ''}, resolved for "
                 f"Python {sys.version_info.major}.{sys.version_info.minor} on Linux x86-64)."]
        lines += [f"{name}=={version}" for name, version in sorted(pins.items())]
        (OUT / f"{image}.txt").write_text("\n".join(lines) + "\n")
        print(f"{image}: {len(pins)} packages")


if __name__ == "__main__":
    main()
