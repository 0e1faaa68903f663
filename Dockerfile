# Two images from one file (docs/deploy.md):
#   serve     the service alone: ONNX Runtime, tokenizers and scikit-learn, no torch
#             docker build --target serve -t sentiment-pipeline-serve .
#   pipeline  the whole package with torch, DVC and MLflow: `run`, `tune` workers, `mlflow server`
#             docker build --target pipeline -t sentiment-pipeline .
# Build arguments: BASE_IMAGE (a Debian bookworm image), TORCH_SPEC / TORCH_INDEX_URL /
# TORCH_FIND_LINKS (where the pipeline's torch comes from; CUDA builds in docs/deploy.md) and
# PIP_CERT (a CA bundle for pip behind a proxy that re-signs TLS).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# --- Python from Debian, in a virtual environment at /opt/venv --------------------------------
FROM ${BASE_IMAGE} AS python
# Python pinned to bookworm's release; ca-certificates is whatever the base's suites carry now
# (Debian's mirrors keep only the newest, and its fixes are the point).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
 && useradd --system --uid 10001 --user-group --home-dir /srv --no-create-home \
        --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# --- the service's environment: pinned packages, then this package without its dependencies ---
FROM python AS serve-build
ARG PIP_CERT
RUN python3 -m venv /opt/venv
COPY deploy/requirements/serve.txt /tmp/serve.txt
RUN pip install -r /tmp/serve.txt
COPY pyproject.toml README.md /tmp/package/
COPY src /tmp/package/src
# pip and setuptools leave with the build: the final image installs nothing. Every module is
# compiled here: a read-only root cannot cache bytecode, and compiling at each start took the
# int8 MiniLM from 2.5 s to 5.3 s to healthy (benchmarks/bench_container.py).
RUN pip install --no-deps /tmp/package \
 && pip uninstall --yes pip setuptools \
 && python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash /opt/venv/lib

FROM python AS serve
COPY --from=serve-build /opt/venv /opt/venv
# The project folder of the service: /srv/models is the mounted /models (read-only), /srv/.cache
# the registry's download cache (a volume), /srv/params.yaml an optional mounted configuration.
RUN mkdir -p /models /srv/.cache \
 && ln -s /models /srv/models \
 && chown app:app /srv/.cache
WORKDIR /srv
# What the operator mounts under /models is theirs, so it is trusted (skops' allow-list still
# applies to scikit-learn files); set it to false to load only the registry's checked downloads.
ENV SENTIMENT_PIPELINE_TRUST_ARTIFACTS=true \
    SENTIMENT_PIPELINE_HOST=0.0.0.0 \
    SENTIMENT_PIPELINE_PORT=8000 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/srv
VOLUME ["/srv/.cache"]
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-m", "sentiment_pipeline.serving.probe"]
ENTRYPOINT ["sentiment-pipeline"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# --- the pipeline's environment: torch from its own source, then the rest pinned -------------
FROM python AS pipeline-build
ARG PIP_CERT
# The CPU build by default; for CUDA, e.g. TORCH_SPEC=torch==2.13.0+cu128 and
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128. TORCH_FIND_LINKS: a folder of wheels
# mounted into the build (an offline machine's own torch wheel).
ARG TORCH_SPEC=torch==2.13.0+cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=
RUN python3 -m venv /opt/venv
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} "$TORCH_SPEC"
COPY deploy/requirements/pipeline.txt /tmp/pipeline.txt
RUN pip install -r /tmp/pipeline.txt
# The project DVC runs in: its dvc.yaml hashes the sources, so they live in /project and the
# package is installed from there (editable: what DVC hashes is what runs).
COPY pyproject.toml README.md dvc.yaml params.yaml /project/
COPY src /project/src
RUN pip install --no-deps --editable /project \
 && find /project -name __pycache__ -prune -exec rm -rf {} +

FROM python AS pipeline
# LightGBM's wheel links the system's OpenMP runtime (the other wheels carry their own); like
# ca-certificates, whatever bookworm's suites carry now.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
COPY --from=pipeline-build /opt/venv /opt/venv
COPY --from=pipeline-build --chown=app:app /project /project
WORKDIR /project
# /mlflow: the `mlflow server` store of compose.yaml; a named volume mounted there takes its
# owner from the image (Docker makes a missing mount point root's).
RUN HOME=/tmp dvc init --no-scm --quiet && chown -R app:app /project/.dvc \
 && mkdir /mlflow && chown app:app /mlflow
# MLflow asks git for the commit of every run; the image has no git, and says so quietly.
ENV HOME=/project \
    GIT_PYTHON_REFRESH=quiet
USER app
EXPOSE 5000
ENTRYPOINT ["sentiment-pipeline"]
CMD ["run"]
