"""compose.yaml: the file's promises checked cheaply, and the stack brought up with podman-compose.

The stack test runs `--profile stack` end to end on a small synthetic CSV: the pipeline job
registers a champion in the stack's MLflow, `serve-registry` serves it, two `tune` workers fill
the PostgreSQL study to exactly its budget, and a second registration is swapped in without a
restart. PostgreSQL is tests/deploy/postgres (built on the local Debian base: no registry here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlflow_server import free_port
from podman import Podman, base_image, readable, report
from services import need_program
from synthetic import make_comments

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
POSTGRES_CONTEXT = REPO / "tests" / "deploy" / "postgres"
POSTGRES_IMAGE = "localhost/sentiment-pipeline-test-postgres:15"
STACK = ("postgres", "mlflow", "pipeline", "tune", "serve-registry")
SECRET = re.compile(r"TOKEN|PASSWORD|SECRET|_KEY$")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
PROJECT_LABEL = "io.podman.compose.project"
MODEL = "sentiment-classifier"
PIPELINE_TRIALS = 2  # the job's LightGBM trials
TUNE_TRIALS = 8  # the study's budget for the workers: they finish the 6 the job left
TOKEN = uuid.uuid4().hex


def compose_file() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def documented() -> dict[str, str]:
    """NAME -> value of .env.example's lines, set (NAME=) or commented out (# NAME=)."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#? ?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match[1]] = match[2]
    return found


# --- the file ---------------------------------------------------------------------------------


def test_every_variable_of_compose_yaml_is_documented_in_env_example() -> None:
    used = set(REFERENCE.findall(COMPOSE.read_text().replace("$$", "")))
    assert used, "compose.yaml takes no setting from the environment"
    assert used - set(documented()) == set()


def test_no_secret_has_a_value_in_compose_yaml_or_env_example() -> None:
    example = documented()
    secrets = {name for name in example if SECRET.search(name)}
    assert {"SENTIMENT_PIPELINE_API_TOKEN", "POSTGRES_PASSWORD", "YOUTUBE_API_KEY"} <= secrets
    assert {name: example[name] for name in secrets if example[name]} == {}
    for name, service in compose_file()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:?[-?][^}]*)?\}", str(value)), (name, key, value)
            # a password inside a URL comes from the environment too
            masked = re.sub(r"\$\{[^}]*\}", "${}", str(value))
            for password in re.findall(r"://[^/:@\s]+:([^@\s]+)@", masked):
                assert password == "${}", (name, key, value)


def test_the_stack_is_a_profile_and_serve_mounts_the_models_read_only() -> None:
    services = compose_file()["services"]
    assert set(services) == {"serve", *STACK}
    assert "profiles" not in services["serve"]
    assert {name: services[name].get("profiles") for name in STACK} == {
        name: ["stack"] for name in STACK
    }
    assert [v for v in services["serve"]["volumes"] if v.endswith(":/models:ro")] == [
        "${MODELS_DIR:-./models}:/models:ro"
    ]
    for name in ("serve", "serve-registry"):
        assert services[name]["read_only"] is True and services[name]["tmpfs"] == ["/tmp"]
        assert "SENTIMENT_PIPELINE_API_TOKEN" in services[name]["environment"]
        assert "healthcheck" not in services[name]  # the image's
    assert services["serve-registry"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "MLFLOW_TRACKING_URI" not in services["serve"]["environment"]


# --- the stack --------------------------------------------------------------------------------


def podman_compose() -> str:
    return need_program("podman-compose", str(Path(sys.executable).parent / "podman-compose"),
                        what="podman-compose (pip install 'podman-compose>=1.6')")


@dataclass
class Stack:
    """One compose project of compose.yaml, run by podman-compose with this machine's podman."""

    podman: Podman
    project: str
    env_file: Path
    log: Path
    work: Path  # PARAMS_FILE params.yaml, DATA_DIR data/, MODELS_DIR models/
    ports: dict[str, int]  # SERVE_PORT, REGISTRY_SERVE_PORT, MLFLOW_PORT

    def __call__(self, *args: str, timeout: float = 120) -> str:
        """`podman-compose --profile stack args...`; its output is kept in the log."""
        command = [podman_compose(), "--project-name", self.project, "--file", str(COMPOSE),
                   "--env-file", str(self.env_file), "--profile", "stack", *args]
        # Only what podman needs: podman-compose lets the environment override the env file.
        env = {key: self.podman.env[key] for key in ("PATH", "HOME", "CONTAINERS_CONF")
               if key in self.podman.env}
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        with self.log.open("a") as sink:
            sink.write(f"$ podman-compose {' '.join(args)}\n{output}\n")
        assert done.returncode == 0, f"podman-compose {' '.join(args)}: exit " \
                                     f"{done.returncode}\n{output[-4000:]}"
        return output

    def containers(self, service: str) -> list[str]:
        listed = self.podman("ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.project}",
                             "--filter", f"label=io.podman.compose.service={service}",
                             "--format", "{{.Names}}").stdout
        return sorted(listed.split())

    def inspect(self, container: str) -> dict:
        return json.loads(self.podman("inspect", container).stdout)[0]

    def logs(self, service: str) -> str:
        done = [self.podman("logs", name, check=False) for name in self.containers(service)]
        return "".join(each.stdout + each.stderr for each in done)

    def remove(self) -> None:
        """down -v, then whatever is left with the project's label (a failed up leaves some)."""
        try:
            self("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=180)
        except (AssertionError, subprocess.TimeoutExpired):
            pass
        label = f"label={PROJECT_LABEL}={self.project}"
        names = self.podman("ps", "-aq", "--filter", label, check=False).stdout.split()
        if names:
            self.podman("rm", "-f", "-t", "0", *names, check=False)
        volumes = self.podman("volume", "ls", "-q", "--filter", label, check=False).stdout.split()
        if volumes:
            self.podman("volume", "rm", "-f", *volumes, check=False)
        self.podman("network", "rm", "-f", f"{self.project}_default", check=False)


def stack_params(baseline_c: float) -> dict:
    """params.yaml for the job: the CSV in /data, no transformer, a 2-trial study, the baseline
    as the champion (its C changes the model), the registry polled every 2 s."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(source="/data/comments.csv", text_column="text", label_column="label")
    params["train"]["baseline"]["C"] = baseline_c
    params["train"]["distilbert"]["enable"] = False
    params["train"]["lightgbm"].update(n_trials=PIPELINE_TRIALS, max_estimators=60,
                                       early_stopping_rounds=10)
    params["evaluation"].update(models=["baseline"], behavioural_tests=False)
    params["export"]["onnx"]["enable"] = False
    params["serve"]["reload_interval_s"] = 2
    return params


def write_params(path: Path, baseline_c: float) -> None:
    # in place: the running containers hold the file's inode
    with path.open("w") as sink:
        yaml.safe_dump(stack_params(baseline_c), sink, sort_keys=False)


def image_tag(image: str, repository: str) -> str:
    """The tag compose.yaml's IMAGE_TAG must be for `image` (built by the fixtures)."""
    name, _, tag = image.rpartition(":")
    assert name.endswith(f"/{repository}"), (image, repository)
    return tag


@pytest.fixture(scope="module")
def stack(containers: Podman, serve_image: str, pipeline_image: str) -> Iterator[Stack]:
    podman_compose()
    containers("build", "--format", "docker", "--network", "host", "--build-arg",
               f"BASE_IMAGE={base_image(containers.env, containers.work)}", "-t",
               POSTGRES_IMAGE, str(POSTGRES_CONTEXT), timeout=900)
    tag = image_tag(serve_image, "sentiment-pipeline-serve")
    assert image_tag(pipeline_image, "sentiment-pipeline") == tag
    work = Path(tempfile.mkdtemp(prefix="sp-compose-"))
    (work / "data").mkdir()
    (work / "models").mkdir()
    make_comments(300, seed=3).to_csv(work / "data" / "comments.csv", index=False)
    write_params(work / "params.yaml", baseline_c=1.0)
    ports = {name: free_port() for name in ("SERVE_PORT", "REGISTRY_SERVE_PORT", "MLFLOW_PORT")}
    settings = {
        "SENTIMENT_PIPELINE_API_TOKEN": TOKEN,
        "YOUTUBE_API_KEY": "",
        "POSTGRES_PASSWORD": uuid.uuid4().hex,
        "POSTGRES_IMAGE": POSTGRES_IMAGE,
        "IMAGE_TAG": tag,
        "PARAMS_FILE": str(work / "params.yaml"),
        "DATA_DIR": str(work / "data"),
        "MODELS_DIR": str(work / "models"),
        "TUNE_N_TRIALS": str(TUNE_TRIALS),
        **{name: str(port) for name, port in ports.items()},
    }
    env_file = work / "stack.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    readable(work)
    env_file.chmod(0o600)
    found = Stack(containers, f"sp-compose-{os.getpid()}", env_file,
                  containers.work / "compose.log", work, ports)
    try:
        yield found
    finally:
        found.remove()
        shutil.rmtree(work, ignore_errors=True)


def get(url: str, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(what: str, check, timeout: float, stack: Stack, service: str):
    """check() until it returns something other than None; fails with the service's logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (OSError, urllib.error.URLError, ValueError):
            found = None
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:g} s; {service} says:\n"
                         f"{stack.logs(service)[-4000:]}")


def registration(output: str) -> str:
    """The line of `run`'s closing summary that names the registered version."""
    found = re.search(r"^Registered as .*$", output, re.M)
    assert found, output[-6000:]
    return found[0].strip()


def answers(url: str) -> bool | None:
    with urllib.request.urlopen(url, timeout=5) as response:
        return True if response.status == 200 else None


def champion_version(mlflow: str) -> str | None:
    try:
        answer = get(f"{mlflow}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion")
    except urllib.error.HTTPError:
        return None
    return answer["model_version"]["version"]


def served_version(url: str) -> str | None:
    return get(f"{url}/info", TOKEN)["model_version"]


def study_trials(stack: Stack) -> list[tuple[str, str, str]]:
    """(study, state, worker) of every trial in PostgreSQL's `optuna` database."""
    (postgres,) = stack.containers("postgres")
    query = ("SELECT s.study_name, t.state, COALESCE(a.value_json, '') FROM trials t "
             "JOIN studies s ON s.study_id = t.study_id LEFT JOIN trial_user_attributes a "
             "ON a.trial_id = t.trial_id AND a.key = 'worker'")
    rows = stack.podman("exec", postgres, "psql", "-U", "sentiment", "-d", "optuna", "-At",
                        "-F", "\t", "-c", query).stdout
    return [tuple(line.split("\t")) for line in rows.splitlines() if line]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_stack_trains_registers_serves_tunes_and_swaps_the_champion(stack: Stack) -> None:
    mlflow = f"http://127.0.0.1:{stack.ports['MLFLOW_PORT']}"
    served = f"http://127.0.0.1:{stack.ports['REGISTRY_SERVE_PORT']}"
    started = time.monotonic()
    # podman-compose turns depends_on into `podman create --requires`, and podman 4.3 neither
    # waits for a health check nor starts a container whose requirement has exited (the job):
    # so the steps that Docker Compose orders itself are taken one by one, as docs/deploy.md
    # tells podman users to.
    stack("up", "-d", "mlflow")
    wait_for("MLflow's /health", lambda: answers(f"{mlflow}/health"), 180, stack, "mlflow")
    job_at = time.monotonic()
    summary = stack("run", "--rm", "-T", "--no-deps", "pipeline", timeout=600)
    job_s = time.monotonic() - job_at
    assert champion_version(mlflow) == "1", summary[-6000:]
    stack("up", "-d", "--no-deps", "--scale", "tune=2", "tune", "serve-registry")
    wait_for("serve-registry healthy", lambda: served_version(served), 120, stack,
             "serve-registry")
    assert served_version(served) == "1"
    info = get(f"{served}/info", TOKEN)
    assert info["model_source"] == f"models:/{MODEL}@champion" and info["kind"] == "sklearn"
    report(f"compose: `pipeline` job (dvc repro, 300 comments, {PIPELINE_TRIALS} LightGBM "
           f"trials) in {job_s:.0f} s: {registration(summary)}; serve-registry serves "
           f"models:/{MODEL}@champion version 1")

    workers = stack.containers("tune")
    assert len(workers) == 2
    for worker in workers:
        code = int(stack.podman("wait", worker, timeout=300).stdout.split()[-1])
        assert code == 0, stack.logs("tune")[-6000:]
    trials = study_trials(stack)
    assert len({study for study, _, _ in trials}) == 1  # the job's study, joined by the workers
    states = Counter(state for _, state, _ in trials)
    assert states["COMPLETE"] + states["PRUNED"] == TUNE_TRIALS, states
    assert set(states) <= {"COMPLETE", "PRUNED"}, states
    hosts = [stack.inspect(worker)["Config"]["Hostname"] for worker in workers]
    by_worker = Counter(worker.strip('"') for _, _, worker in trials)
    per_tune = [sum(n for w, n in by_worker.items() if w.startswith(f"{host}-")) for host in hosts]
    assert sum(per_tune) == TUNE_TRIALS - PIPELINE_TRIALS, (by_worker, hosts)
    report(f"compose: 2 tune workers finished {' + '.join(map(str, per_tune))} = "
           f"{sum(per_tune)} trials after the job's {PIPELINE_TRIALS}: the PostgreSQL study holds "
           f"exactly {TUNE_TRIALS} finished trials = TUNE_N_TRIALS ({dict(states)})")

    # The default `serve` on a project's models/ (the job's, copied out of its volume), as
    # after `sentiment-pipeline run` on the host: the registry is not there, best_model.json is.
    stack.podman("cp", f"{workers[0]}:/project/models/.", str(stack.work / "models"))
    readable(stack.work / "models")
    folder = f"http://127.0.0.1:{stack.ports['SERVE_PORT']}"
    stack("up", "-d", "--no-deps", "serve")
    wait_for("serve healthy", lambda: answers(f"{folder}/health"), 120, stack, "serve")
    with urllib.request.urlopen(f"{folder}/", timeout=10) as response:
        assert "<html" in response.read().decode().lower()
    info = get(f"{folder}/info", TOKEN)
    assert info["model_source"] == "/srv/models/evaluation/best_model.json", info
    assert info["kind"] == "sklearn" and info["model_version"] is None
    report("compose: default `serve` on MODELS_DIR (the job's models/): healthy, dashboard at /, "
           f"the evaluation's champion from {info['model_source']}")

    (server,) = stack.containers("serve-registry")
    before = stack.inspect(server)["State"]["StartedAt"]
    write_params(stack.work / "params.yaml", baseline_c=0.25)
    rerun_at = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        rerun = pool.submit(stack, "run", "--rm", "-T", "--no-deps", "pipeline", timeout=600)

        def registered() -> float | None:
            version = champion_version(mlflow)
            if version == "2":
                return time.monotonic()
            if rerun.done():
                raise AssertionError(f"the rerun left the champion at version {version}:\n"
                                     f"{rerun.result()[-6000:]}")
            return None

        registered_at = wait_for("version 2 registered", registered, 600, stack, "mlflow")
        served_at = wait_for("serve-registry on version 2",
                             lambda: time.monotonic() if served_version(served) == "2" else None,
                             60, stack, "serve-registry")
        summary = rerun.result()
    state = stack.inspect(server)["State"]
    assert state["StartedAt"] == before and state["Running"], state
    report(f"compose: the job rerun with train.baseline.C 1.0 -> 0.25 "
           f"({registration(summary)}) registered version 2 {registered_at - rerun_at:.0f} s "
           f"after its start; serve-registry served it {served_at - registered_at:.1f} s later "
           "(serve.reload_interval_s 2), same container, not restarted")
    report(f"compose: the whole flow took {time.monotonic() - started:.0f} s before `down -v`")
