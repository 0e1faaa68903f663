"""bench_container's measures: image sizes and contents; memory and CPU of processes, from /proc."""


import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from common import REPO

# The container helpers of the tests: podman as this machine runs it, the base, the builds.
sys.path.insert(0, str(REPO / "tests"))
from podman import Podman  # noqa: E402

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
TAGS = {"serve": "localhost/sentiment-pipeline-serve:bench",
        "pipeline": "localhost/sentiment-pipeline:bench"}
SITE_PACKAGES = "/opt/venv/lib/python3*/site-packages"
CONCURRENCY = 32
WARMUP_S = 2.0
ARMS = ("container", "bare", "image-chroot")
BYTECODE = "container-bytecode"  # a diagnosis of the start time: see bytecode_image
GOALS = {
    "serve_image_gb_at_most": 1.2,
    "int8_healthy_s_at_most": 5.0,  # median from `podman run` to GET /health 200
    "container_vs_bare_at_least": 0.95,  # requests/s at concurrency 32, ratio of medians
}


# --- images -----------------------------------------------------------------------------------


def image_size(session: Podman, image: str) -> int:
    return int(session("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def layers(session: Podman, image: str) -> list[dict[str, Any]]:
    """The image's layers over 1 MB, oldest first, with the instruction that made each."""
    history = json.loads(session("history", "--format", "json", image).stdout)
    rows = [{"mb": round(entry["size"] / 1e6, 1), "created_by": " ".join(
        entry.get("CreatedBy", entry.get("createdBy", "")).split())[:90]}
        for entry in reversed(history)]
    return [row for row in rows if row["mb"] >= 1]


def du_mb(session: Podman, image: str, pattern: str) -> dict[str, float]:
    """`du -sk` of the paths `pattern` names inside the image (as root, to read them all), in
    MB; a file under two of them counts once, under the first."""
    done = session("run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c",
                   f"du -sk {pattern}")
    sizes = {}
    for line in done.stdout.splitlines():
        kb, _, path = line.partition("\t")
        sizes[path] = round(int(kb) * 1024 / 1e6, 1)
    return sizes


def largest_packages(session: Podman, image: str, top: int) -> list[dict[str, Any]]:
    """The largest entries of the image's site-packages; a vendored `<name>.libs` folder of
    shared libraries counts with its package."""
    found = du_mb(session, image, f"{SITE_PACKAGES}/*")
    sizes = {Path(path).name: mb for path, mb in found.items()}
    for name in [name for name in sizes if name.endswith(".libs")]:
        owner = name.removesuffix(".libs")
        if owner in sizes:
            sizes[owner] = round(sizes[owner] + sizes.pop(name), 1)
    ranked = sorted(sizes.items(), key=lambda item: -item[1])[:top]
    return [{"package": name, "mb": mb} for name, mb in ranked]


def image_figures(session: Podman, images: dict[str, str], base: str) -> dict[str, Any]:
    sizes = {name: image_size(session, tag) for name, tag in {**images, "base": base}.items()}
    serve = images["serve"]
    return {
        "bytes": sizes,
        "gb": {name: round(size / 1e9, 3) for name, size in sizes.items()},
        "serve_over_base_gb": round((sizes["serve"] - sizes["base"]) / 1e9, 3),
        "serve_layers": layers(session, serve),
        "serve_folders_mb": du_mb(session, serve, "/opt/venv /usr /var/cache/apt /var /etc"),
        "serve_largest_packages": largest_packages(session, serve, top=5),
        "serve_site_packages_top10": largest_packages(session, serve, top=10),
    }


def bytecode_image(session: Podman, image: str, folder: Path) -> str:
    """The image plus a layer with every module of its environment byte-compiled: the image
    ships none (its build deletes __pycache__, and a read-only root keeps Python from writing
    any), so each start compiles what it imports; this variant measures what that costs."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Containerfile").write_text(
        f"FROM {image}\nUSER root\nRUN python3 -m compileall -q -j 0 /opt/venv > /dev/null\n"
        "USER app\n")
    tag = f"{TAGS['serve']}-bytecode"
    session("build", "--format", "docker", "-t", tag, str(folder), timeout=900)
    return tag


# --- processes: memory and CPU from the host's /proc -------------------------------------------

def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rpartition(")")[2].split()[1])
                parents.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def proc_field(pid: int, name: str, field: str) -> float:
    """A `Field: N kB` line of /proc/pid/<name>, in MB (0 once the process has gone)."""
    with contextlib.suppress(OSError):
        for line in (Path("/proc") / str(pid) / name).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def memory(pid: int) -> dict[str, Any]:
    """The RSS of the server and of any children it has (shared libraries included)."""
    tree = descendants(pid)
    return {"processes": len(tree),
            "rss_mb": round(sum(proc_field(p, "status", "VmRSS") for p in tree), 1)}


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int], children: bool = True) -> float:
    """User and system CPU seconds of `pids` (and of their living children)."""
    total = 0
    for process in {p for pid in pids for p in (descendants(pid) if children else [pid])}:
        with contextlib.suppress(OSError):
            fields = (Path("/proc") / str(process) / "stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values[:8]) - idle) / TICK


# --- the two servers --------------------------------------------------------------------------
