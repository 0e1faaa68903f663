"""Benchmark: the container images — their sizes, the serve image's start to healthy, its idle
memory, and requests/s inside the container against the same model served bare, interleaved.

The images are built from this checkout by tests/podman.py (the machine's podman configuration,
the local Debian base; podman's layer cache makes an unchanged tree quick), under tags of their
own so that tests building the `:test` tags meanwhile cannot swap them. Two models are served:
the logistic baseline and MiniLM-L6 fine-tuned briefly on the airline split (`--train-rows`,
one epoch: the compute, not the accuracy, matters here), exported to int8 ONNX by our export.

Three arms serve the same model files with this checkout's code, one worker, `--threads`
inference threads, no alias polling and the repository's params.yaml:
  container     `podman run --read-only --tmpfs /tmp`, the models mounted read-only at /models,
                params.yaml at /srv/params.yaml, the port published on 127.0.0.1;
  bare          `sentiment-pipeline serve` from this interpreter's environment on the host;
  image-chroot  the image's own files (its Python, packages and environment, user 10001) run
                without a container: chroot into its root file system, the same mounts, the
                host's network. Against the container it isolates what the container itself
                costs; against bare, what the image's interpreter and packages change.
Start times (`--starts` each, the arms taking turns) also cover container-bytecode: the image
with its modules byte-compiled in an extra layer, to measure what compiling at every start costs.
No arm gets a CPU quota: on a 2-core machine the load generator (this process) shares the cores
with the server, as in bench_serving.py. Each round loads every arm in turn for `--seconds`
after a 2 s warm-up, single-text TEI /predict requests at concurrency 32; the CPU the server
and the rest of the machine used meanwhile is recorded, since the machine may be shared.

    python benchmarks/bench_container.py [--rounds 5] [--seconds 10] [--starts 5]
        [--train-rows 1000] [--threads 2] [--no-pipeline-image] [--result-name container]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_serving import fine_tune_minilm, predict_requests
from common import REPO, WORK, airline_project, load_split, print_table, write_result
from loadgen import run_load

# The container helpers of the tests: podman as this machine runs it, the base, the builds.
sys.path.insert(0, str(REPO / "tests"))
from container_arms import Arms, Served, image_root  # noqa: E402
from container_stats import (  # noqa: E402
    ARMS,
    BYTECODE,
    CONCURRENCY,
    GOALS,
    HOST,
    TAGS,
    WARMUP_S,
    bytecode_image,
    cpu_seconds,
    image_figures,
    image_size,
    machine_busy_seconds,
    memory,
)
from podman import (  # noqa: E402
    base_image,
    build,
    podman_session,
    readable,  # noqa: E402
)

# --- images -----------------------------------------------------------------------------------


def idle_memory(served: Served, settle_s: float) -> dict[str, Any]:
    time.sleep(settle_s)  # start-up's last allocations and the first collections
    return memory(served.pid)


def health_check_cost(arms: Arms) -> dict[str, Any]:
    """CPU seconds of one run of the image's HEALTHCHECK command (a Python start), inside a
    serving container; a Docker engine runs it every 10 s (podman here has no systemd to)."""
    with arms.container("baseline") as served:
        probe = ("import resource, subprocess;"
                 "code = subprocess.run(['python3', '-m', 'sentiment_pipeline.serving.probe'])"
                 ".returncode;"
                 "usage = resource.getrusage(resource.RUSAGE_CHILDREN);"
                 "print(code, usage.ru_utime + usage.ru_stime)")
        runs = []
        for _ in range(3):
            code, seconds = arms.session("exec", served.name, "python3", "-c", probe).stdout.split()
            if code != "0":
                raise SystemExit(f"the health check failed in {served.name}: exit {code}")
            runs.append(float(seconds))
    cpu = statistics.median(runs)
    return {"cpu_s_per_probe": round(cpu, 3), "runs": runs,
            "share_of_a_core_at_10s_interval": round(cpu / 10, 4)}


# --- measurement ------------------------------------------------------------------------------

def start_times(args, arms: Arms, name: str) -> dict[str, Any]:
    """`--starts` starts of each arm, taking turns; the idle memory after each."""
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in (*ARMS, BYTECODE)}
    for _ in range(args.starts):
        for arm in runs:
            with arms.start(arm, name) as served:
                runs[arm].append({"start_returned_s": round(served.started_s, 2),
                                  "healthy_s": round(served.healthy_s, 2),
                                  **idle_memory(served, args.settle)})
            print(f"  {name} {arm}: healthy in {served.healthy_s:.2f} s "
                  f"(start returned {served.started_s:.2f} s), "
                  f"RSS {runs[arm][-1]['rss_mb']} MB", flush=True)
    return {arm: {"runs": rows,
                  "healthy_s_median": round(statistics.median(r["healthy_s"] for r in rows), 2),
                  "rss_mb_median": statistics.median(r["rss_mb"] for r in rows)}
            for arm, rows in runs.items()}


def one_round(served: Served, requests: list[bytes], seconds: float) -> dict[str, Any]:
    runtime = [served.runtime_pid] if served.runtime_pid else []
    busy, own = machine_busy_seconds(), time.process_time()
    # conmon's children are the server: its own CPU only
    server, helper = cpu_seconds([served.pid]), cpu_seconds(runtime, children=False)
    result = run_load(HOST, served.port, requests, concurrency=CONCURRENCY, seconds=seconds,
                      warmup_s=WARMUP_S)
    # The warm-up's CPU is in these deltas too, so they are per second of the whole call.
    wall = result.seconds + WARMUP_S
    cores = {"server_cores": (cpu_seconds([served.pid]) - server) / wall,
             "runtime_cores": (cpu_seconds(runtime, children=False) - helper) / wall,
             "loadgen_cores": (time.process_time() - own) / wall}
    cores["other_cores"] = (machine_busy_seconds() - busy) / wall - sum(cores.values())
    return {**result.summary(1), **{key: round(value, 3) for key, value in cores.items()},
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def ratio(rates: dict[str, list[float]], one: str, other: str) -> dict[str, Any]:
    """one/other: of the medians, per round, and the worst (one's slowest, other's fastest)."""
    return {
        "median": round(statistics.median(rates[one]) / statistics.median(rates[other]), 3),
        "per_round": [round(a / b, 3) for a, b in zip(rates[one], rates[other], strict=True)],
        "worst": round(min(rates[one]) / max(rates[other]), 3),
    }


def throughput(args, arms: Arms, name: str, texts: list[str]) -> dict[str, Any]:
    """The three arms up together; `--rounds` rounds of each in turn."""
    rounds: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(arms.start(arm, name)) for arm in ARMS]
        batching = {served.label: served.info().get("batching") for served in servers}
        if len({json.dumps(b, sort_keys=True) for b in batching.values()}) != 1:
            raise SystemExit(f"the arms' batching settings differ: {batching}")
        for index in range(args.rounds):
            for served in servers:
                row = one_round(served, predict_requests(texts, 1, served.port), args.seconds)
                rounds[served.label].append(row)
                print(f"  {name} round {index + 1} {served.label}: {row['requests_per_s']} req/s"
                      f" (cores: server {row['server_cores']:.2f}, conmon "
                      f"{row['runtime_cores']:.3f}, loadgen {row['loadgen_cores']:.2f}, others "
                      f"{row['other_cores']:.2f}; errors {row['errors']})", flush=True)
    rates = {arm: [row["requests_per_s"] for row in rows] for arm, rows in rounds.items()}
    return {
        "batching": batching["bare"],
        "rounds": rounds,
        "requests_per_s_median": {arm: statistics.median(v) for arm, v in rates.items()},
        "server_cores_median": {arm: statistics.median(row["server_cores"] for row in rows)
                                for arm, rows in rounds.items()},
        "container_vs_bare": ratio(rates, "container", "bare"),
        "container_vs_image_chroot": ratio(rates, "container", "image-chroot"),
        "image_chroot_vs_bare": ratio(rates, "image-chroot", "bare"),
    }


def prepare_models(args, folder: Path) -> tuple[Path, Path, list[str]]:
    """The baseline and the int8 MiniLM in one folder to mount, the params.yaml both arms read
    (in the bare server's working folder), and the test split's texts."""
    from sentiment_pipeline.config.export import OnnxExportConfig
    from sentiment_pipeline.models.conversion.int8 import quantize_int8
    from sentiment_pipeline.models.conversion.onnx_export import export_transformers
    from sentiment_pipeline.stages import run_stage

    paths, manager = airline_project("container")
    if not (paths.baseline_model / "model.json").is_file():
        run_stage("train_baseline", manager.config, paths)
    work = paths.root / "models"
    minilm, fp32 = work / "minilm", work / "minilm_onnx"
    fine_tune_minilm(paths, minilm, args.train_rows, epochs=1)
    export = OnnxExportConfig()
    if not (fp32 / "model.json").is_file():
        export_transformers(minilm, fp32, export)
    mounted = folder / "mount"
    if not (mounted / "int8" / "model.json").is_file():
        shutil.rmtree(mounted, ignore_errors=True)
        quantize_int8(fp32, mounted / "int8", export)
        shutil.copytree(paths.baseline_model, mounted / "baseline")
    params = folder / "bare" / "params.yaml"
    params.parent.mkdir(exist_ok=True)
    shutil.copy(REPO / "params.yaml", params)
    readable(mounted)
    readable(params.parent)
    return mounted, params, load_split(paths, "test")["text"].astype(str).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per model")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per round and arm")
    parser.add_argument("--starts", type=int, default=5, help="starts per model and arm")
    parser.add_argument("--settle", type=float, default=3.0, help="s after healthy before RSS")
    parser.add_argument("--threads", type=int, default=2, help="inference threads, both arms")
    parser.add_argument("--train-rows", type=int, default=1000, help="MiniLM fine-tuning rows")
    parser.add_argument("--models", nargs="+", default=["int8", "baseline"],
                        choices=["int8", "baseline"], help="throughput: these models")
    parser.add_argument("--no-pipeline-image", action="store_true",
                        help="build and size the serve image only")
    parser.add_argument("--result-name", default="container")
    args = parser.parse_args()

    folder = WORK / "container"
    folder.mkdir(parents=True, exist_ok=True)
    models, params, texts = prepare_models(args, folder)
    targets = ("serve",) if args.no_pipeline_image else ("serve", "pipeline")
    with podman_session(folder) as session:
        base = base_image(session.env, folder)
        images, build_s = {}, {}
        for target in targets:
            print(f"building the {target} image...", flush=True)
            begin = time.monotonic()
            images[target] = build(session.env, target, TAGS[target], base,
                                   folder / f"build-{target}.log")
            build_s[target] = round(time.monotonic() - begin, 1)
        sizes = image_figures(session, images, base)
        bytecode = bytecode_image(session, images["serve"], folder / "bytecode")
        sizes["serve_bytecode_gb"] = round(image_size(session, bytecode) / 1e9, 3)
        print("image sizes (GB):", json.dumps(sizes["gb"]), "with bytecode:",
              sizes["serve_bytecode_gb"], flush=True)
        with image_root(session, images["serve"]) as root:
            arms = Arms(session, images["serve"], bytecode, models, params, args.threads, root)
            starts = {name: start_times(args, arms, name) for name in ("int8", "baseline")}
            probe = health_check_cost(arms)
            load = {name: throughput(args, arms, name, texts) for name in args.models}

    int8_healthy = starts["int8"]["container"]["healthy_s_median"]
    figures = {
        "serve_image_gb": sizes["gb"]["serve"],
        "int8_healthy_s": int8_healthy,
        "container_vs_bare": load["int8"]["container_vs_bare"]["median"] if "int8" in load
        else None,
    }
    met = {
        "serve_image_gb_at_most": figures["serve_image_gb"] <= GOALS["serve_image_gb_at_most"],
        "int8_healthy_s_at_most": int8_healthy <= GOALS["int8_healthy_s_at_most"],
        "container_vs_bare_at_least": figures["container_vs_bare"] is not None
        and figures["container_vs_bare"] >= GOALS["container_vs_bare_at_least"],
    }
    table = [{"image": name, "GB": gb} for name, gb in sizes["gb"].items()]
    print_table(table)
    print("serve over base:", sizes["serve_over_base_gb"], "GB; largest packages:",
          json.dumps(sizes["serve_largest_packages"]))
    rows = []
    for name, by_arm in starts.items():
        for arm, summary in by_arm.items():
            row = {"model": name, "arm": arm, "healthy_s": summary["healthy_s_median"],
                   "idle_rss_mb": summary["rss_mb_median"]}
            row["req_per_s_c32"] = load.get(name, {}).get("requests_per_s_median", {}).get(arm, "")
            rows.append(row)
    print_table(rows)
    for name, result in load.items():
        for key in ("container_vs_bare", "container_vs_image_chroot", "image_chroot_vs_bare"):
            print(f"{name} {key}: {json.dumps(result[key])}")
    print("health check:", json.dumps(probe))
    print("goals:", json.dumps(figures), "met:", json.dumps(met))
    out = write_result(args.result_name, {
        "settings": {**vars(args), "concurrency": CONCURRENCY, "warmup_s": WARMUP_S,
                     "tags": TAGS, "base_image": base},
        "build_s": build_s,
        "images": sizes,
        "start_and_idle_memory": starts,
        "health_check": probe,
        "throughput_c32": load,
        "goals": GOALS,
        "figures": figures,
        "goals_met": met,
    })
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
