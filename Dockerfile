# siftline container image: the `siftline` CLI on a pinned dependency set, run as a non-root user.
#
#   docker build -t siftline:cpu .                                   # CPU image (default)
#   docker build -t siftline:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#     --build-arg EXTRAS=cluster,gpu .                               # CUDA image (GPU scoring)
#   docker run --rm -v "$PWD/out:/home/siftline/out" siftline:cpu run configs/default.yaml
#
# Dependencies come from requirements.lock (regenerate it with scripts/lock_requirements.py
# after changing pyproject.toml). torch is pinned by version and taken from TORCH_INDEX_URL, so
# the same lock gives the CPU build or a CUDA build. A CUDA base image ships without Python:
# the distribution's python3 is installed there. wget is for KubeRay's pod health probes.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=cluster
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/siftline \
    PATH=/opt/siftline/bin:$PATH \
    RAY_USAGE_STATS_ENABLED=0

# Distribution packages float with the base image's security updates, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget ca-certificates \
    && if ! command -v python3 >/dev/null; then \
         apt-get install -y --no-install-recommends python3 python3-venv; \
       fi \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/siftline \
    && useradd --create-home --uid 10001 --user-group --shell /bin/bash siftline

COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

COPY pyproject.toml setup.py README.md /tmp/siftline-src/
COPY pipeline /tmp/siftline-src/pipeline
COPY kernels /tmp/siftline-src/kernels
# setup.py's three compiled kernels need a C compiler (and Python's headers) only to build:
# they are installed for this step and removed after it; the import checks that all were built.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && if [ ! -e "$(python3 -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" ]; \
       then apt-get install -y --no-install-recommends python3-dev; fi \
    && pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" \
        "/tmp/siftline-src[${EXTRAS}]" \
    && python3 -c "import siftline.io._jsonl_parse, siftline.io._jsonl_scan, siftline.dedupe._whitespace" \
    && apt-get purge -y --auto-remove gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/* /tmp/siftline-src

COPY --chown=10001:10001 configs /home/siftline/configs
# A numeric user, so Kubernetes can check runAsNonRoot.
USER 10001:10001
WORKDIR /home/siftline
ENTRYPOINT ["siftline"]
CMD ["--help"]
