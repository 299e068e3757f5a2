# GPU image for the pipeline: CUDA runtime base; the pinned torch wheel carries its own CUDA libraries.
#   docker build -t infogan-pipeline .
#   docker run --gpus all -v "$PWD/data:/app/data" -v "$PWD/mlruns-docker:/app/mlartifacts" infogan-pipeline
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# dependencies first, so code edits don't reinstall torch
COPY pyproject.toml README.md ./
COPY infogan/__init__.py infogan/__init__.py
COPY pipeline/__init__.py pipeline/__init__.py
RUN pip install .

COPY . .
RUN pip install --no-deps -e . \
    && git config --global --add safe.directory /app \
    && (git rev-parse --git-dir >/dev/null 2>&1 || (git init -q && git add -A && git -c user.name=docker -c user.email=docker@localhost commit -qm image))

CMD ["dvc", "repro"]
