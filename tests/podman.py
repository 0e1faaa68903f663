"""Real containers for the deployment tests: podman, a local Debian base, the images built once.

Without podman (or, for the base image, debootstrap) the tests skip, or fail in CI (services.py).
No registry is needed: the base is made with debootstrap from the machine's Debian mirror and
imported once (kept in podman's store, so later runs reuse it), and the two images are built
from the repository's Dockerfile with the host's CA bundle and, when pip's configuration names
a folder holding a torch wheel, that folder mounted into the build (an offline torch).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlflow_server import free_port
from services import need_program, unavailable

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "localhost/sentiment-pipeline-base:bookworm"
SERVE_IMAGE = "localhost/sentiment-pipeline-serve:test"
PIPELINE_IMAGE = "localhost/sentiment-pipeline:test"
BASE_ENV = "SENTIMENT_PIPELINE_BASE_IMAGE"  # a bookworm image to build on instead
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
_names = itertools.count()
REPORT: list[str] = []  # one line per container check, printed at the end of the run


def report(line: str) -> None:
    REPORT.append(line)


def podman() -> str:
    return need_program("podman", what="podman (apt-get install podman runc)")


def containers_conf(folder: Path) -> Path:
    """A containers.conf this machine's podman runs with: ulimits no higher than the host's
    (podman's defaults are refused by setrlimit here) and runc where it is installed (crun
    refuses cgroups in hybrid mode)."""
    lines = ["[containers]"]
    limits = []
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = resource.getrlimit(which)
        value = min(v for v in (soft, hard, 65536) if v != resource.RLIM_INFINITY)
        limits.append(f'"{name}={value}:{value}"')
    lines.append(f"default_ulimits = [{', '.join(limits)}]")
    if shutil.which("runc"):
        lines += ["[engine]", 'runtime = "runc"']
    path = folder / "containers.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def environment(conf: Path) -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def run(env: dict[str, str], *args: str, timeout: float = 120, check: bool = True,
        log: Path | None = None) -> subprocess.CompletedProcess:
    """`podman args...`; a failure raises with the command's last output lines."""
    if log is None:
        done = subprocess.run([podman(), *args], env=env, capture_output=True, text=True,
                              timeout=timeout)
        output = done.stdout + done.stderr
    else:
        with log.open("w") as sink:
            done = subprocess.run([podman(), *args], env=env, stdout=sink,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout)
        output = log.read_text()
    if check and done.returncode != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise AssertionError(f"podman {' '.join(args[:3])}... exit {done.returncode}:\n{tail}")
    return done


def image_exists(env: dict[str, str], image: str) -> bool:
    return run(env, "image", "exists", image, check=False).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror in apt's sources (deb822 or one-line), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        with contextlib.suppress(OSError):
            for match in re.finditer(r"(?:URIs:|^deb)\s+(\S+/debian)\s", source.read_text(), re.M):
                return match[1]
    return "http://deb.debian.org/debian"


def base_image(env: dict[str, str], work: Path) -> str:
    """A Debian bookworm image with nothing but Debian in it, made once and kept."""
    chosen = os.environ.get(BASE_ENV)
    if chosen:
        return chosen
    if image_exists(env, BASE_IMAGE):
        return BASE_IMAGE
    debootstrap = need_program("debootstrap", "/usr/sbin/debootstrap",
                               what="debootstrap to make a Debian base image")
    root = work / "debian-root"
    subprocess.run([debootstrap, "--variant=minbase", "bookworm", str(root), debian_mirror()],
                   check=True, capture_output=True, timeout=600)
    for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for path in (root / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([podman(), "import", "-q", "-", BASE_IMAGE], stdin=tar.stdout, env=env,
                   check=True, capture_output=True, timeout=300)
    tar.wait()
    shutil.rmtree(root, ignore_errors=True)
    return BASE_IMAGE


def torch_wheels() -> Path | None:
    """A folder from pip's find-links that holds a torch wheel (this machine's offline torch)."""
    listed = subprocess.run(["pip", "config", "list"], capture_output=True, text=True).stdout
    folders = re.findall(r"find-links='([^']+)'", listed) + [os.environ.get("PIP_FIND_LINKS", "")]
    for folder in filter(None, folders):
        if any(Path(folder).glob("torch-*.whl")):
            return Path(folder)
    return None


def build(env: dict[str, str], target: str, tag: str, base: str, log: Path) -> str:
    """`podman build --target target` of the repository's Dockerfile (docker format, so the
    HEALTHCHECK is kept), with the host's CA bundle and an offline torch when there is one."""
    args = ["build", "--format", "docker", "--network", "host", "--target", target,
            "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
    if HOST_CA.is_file():
        args += ["-v", f"{HOST_CA}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt"]
    wheels = torch_wheels()
    if target == "pipeline" and wheels is not None:
        args += ["-v", f"{wheels}:/run/wheels:ro", "--build-arg", "TORCH_INDEX_URL=",
                 "--build-arg", "TORCH_FIND_LINKS=/run/wheels"]
    run(env, *args, str(REPO), timeout=1500, log=log)
    return tag


@dataclass
class Podman:
    """podman with this machine's configuration, and the containers a test started."""

    env: dict[str, str]
    work: Path
    started: list[str] = field(default_factory=list)

    def __call__(self, *args: str, timeout: float = 120, check: bool = True
                 ) -> subprocess.CompletedProcess:
        return run(self.env, *args, timeout=timeout, check=check)

    def start(self, image: str, *command: str, options: tuple[str, ...] = (),
              port: bool = True) -> Container:
        """`podman run -d` with the container's 8000 published on 127.0.0.1 (a free port)."""
        name = f"sp-test-{os.getpid()}-{next(_names)}"
        host_port = free_port() if port else 0
        published = ["-p", f"127.0.0.1:{host_port}:8000"] if port else []
        self("run", "-d", "--name", name, *published, *options, image, *command)
        self.started.append(name)
        return Container(self, name, host_port)

    def remove_all(self) -> None:
        for name in self.started:
            self("rm", "-f", "-t", "0", name, check=False)


@dataclass
class Container:
    podman: Podman
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self) -> dict:
        return json.loads(self.podman("inspect", self.name).stdout)[0]

    def logs(self) -> str:
        done = self.podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds until GET /health answers 200; fails with the logs when it never does."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.running():
                raise AssertionError(f"{self.name} exited:\n{self.logs()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not healthy in {timeout} s:\n{self.logs()[-3000:]}")

    def wait_exit(self, timeout: float = 60) -> int:
        done = self.podman("wait", self.name, timeout=timeout)
        return int(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def podman_session(work: Path) -> Iterator[Podman]:
    podman()
    conf = containers_conf(work)
    session = Podman(environment(conf), work)
    try:
        yield session
    finally:
        session.remove_all()


def make_images(session: Podman, targets: tuple[str, ...]) -> dict[str, str]:
    """The images of `targets` built from this checkout (podman's layer cache makes a rebuild
    of an unchanged tree quick)."""
    base = base_image(session.env, session.work)
    tags = {"serve": SERVE_IMAGE, "pipeline": PIPELINE_IMAGE}
    built = {}
    for target in targets:
        log = session.work / f"build-{target}.log"
        built[target] = build(session.env, target, tags[target], base, log)
    return built


def readable(folder: Path) -> None:
    """Let the image's user (uid 10001) read a host folder: the test's own tmp is root's 0700."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def require_root() -> None:
    """podman here runs containers as root only (the issue's facts); skip otherwise."""
    if os.geteuid() != 0:
        unavailable("needs root for podman on this machine")
