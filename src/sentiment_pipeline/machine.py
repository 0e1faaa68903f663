"""Facts about the machine this process runs on: usable cores and the CPU's vector extensions."""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPUINFO = Path("/proc/cpuinfo")
# Vector extensions that decide which kernels torch, oneDNN, MKL and ONNX Runtime pick.
VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
# The int8 dot-product instructions; without them ONNX Runtime advises 7-bit weights
# (reduce_range) to avoid saturation in the 16-bit accumulation of u8 x s8 products.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cgroup_cpu_limit(root: Path | None = None) -> int | None:
    """Cores allowed by a cgroup CPU quota (a container's --cpus), rounded up; None if none."""
    root = root or CGROUP_ROOT
    candidates = [
        (root / "cpu.max", None),  # cgroup v2: "<quota> <period>" or "max <period>"
        (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"),  # v1
    ]
    for quota_path, period_path in candidates:
        try:
            if period_path is None:
                quota, period = quota_path.read_text().split()[:2]
            else:
                quota, period = quota_path.read_text().strip(), period_path.read_text().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return max(1, math.ceil(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            return None
    return None


def usable_cores(cgroup_root: Path | None = None) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    os.cpu_count() is the host's count: inside a container limited to 2 CPUs on a 64-core host
    it says 64, and sizing thread pools by it starts dozens of threads that fight for 2 cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root or CGROUP_ROOT)
    return max(1, min(cores, limit) if limit else cores)


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        return _cpu_flags_here()
    return frozenset(
        flag for line in cpuinfo.splitlines() if line.startswith("flags")
        for flag in line.partition(":")[2].split()
    )


@lru_cache(maxsize=1)
def _cpu_flags_here() -> frozenset[str]:
    try:
        return cpu_flags(CPUINFO.read_text())
    except OSError:  # not Linux
        return frozenset()


def cpu_model(cpuinfo: str | None = None) -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None where there is none."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:  # not Linux
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip() or None
    return None


def vector_extensions(cpuinfo: str | None = None) -> list[str]:
    """The VECTOR_FLAGS this CPU has, in VECTOR_FLAGS' order."""
    flags = cpu_flags(cpuinfo)
    return [flag for flag in VECTOR_FLAGS if flag in flags]


def has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has int8 dot-product instructions."""
    return not cpu_flags(cpuinfo).isdisjoint(VNNI_FLAGS)
