"""Machine facts: the cores a process may use (affinity, cgroup quota) and the CPU's extensions."""

from __future__ import annotations

import os

from sentiment_pipeline import machine

CPUINFO = """processor : 0
flags : fpu sse avx avx2 fma avx512f avx512_vnni
processor : 1
flags : fpu sse avx avx2 fma avx512f avx512_vnni
"""


def test_cgroup_quota_caps_the_usable_cores(tmp_path):
    assert machine.cgroup_cpu_limit(tmp_path) is None  # no cgroup files
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert machine.cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert machine.cgroup_cpu_limit(tmp_path) == 2
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert machine.cgroup_cpu_limit(tmp_path) == 4
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert machine.cgroup_cpu_limit(tmp_path) is None
    assert 1 <= machine.usable_cores() <= (os.cpu_count() or 1)


def test_usable_cores_is_the_smaller_of_affinity_and_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert machine.usable_cores(tmp_path) == 64  # no quota: the affinity
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    assert machine.usable_cores(tmp_path) == 2  # docker run --cpus 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert machine.usable_cores(tmp_path) == 1  # taskset -c 0 under the same quota


def test_a_damaged_cgroup_file_means_no_limit(tmp_path):
    (tmp_path / "cpu.max").write_text("lots 100000\n")
    assert machine.cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("")
    assert machine.cgroup_cpu_limit(tmp_path) is None


def test_vector_extensions_and_vnni_come_from_the_cpu_flags():
    assert machine.vector_extensions(CPUINFO) == ["avx", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert machine.has_vnni(CPUINFO)
    assert not machine.has_vnni("flags : avx avx2\n")
    assert machine.has_vnni("flags : avx_vnni\n")
    assert machine.vector_extensions("") == [] and not machine.has_vnni("")
    assert isinstance(machine.has_vnni(), bool)  # this machine's /proc/cpuinfo, or none
