# The pipeline on a GPU. The base is the official PyTorch CUDA runtime image of the pinned torch
# (2.14.1, built for CUDA 13.0), so installing the package downloads no second torch.
#   docker build -t infogan-pipeline .
#   docker run --gpus all -v "$PWD/data:/app/data" -v "$PWD/mlflow:/app/mlflow" \
#       -v "$PWD/mlartifacts:/app/mlartifacts" infogan-pipeline
# docs/operations.md, "Docker", says more.
FROM pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    MLFLOW_TRACKING_URI=sqlite:////app/mlflow/mlflow.db

# The image runs as this user, not as root; uid 1000 is the usual first user on the host, which
# owns the mounted folders.
RUN useradd --create-home --uid 1000 --shell /bin/bash infogan

WORKDIR /app

# The dependencies first, so that a code change does not reinstall them. No dev or test extras.
COPY pyproject.toml README.md ./
COPY infogan/__init__.py infogan/__init__.py
COPY pipeline/__init__.py pipeline/__init__.py
RUN pip install --no-cache-dir .

COPY --chown=1000:1000 . .
# No git in the image (.dockerignore leaves .git out): DVC runs the pipeline without one.
RUN pip install --no-cache-dir --no-deps . \
    && printf '[core]\n    no_scm = true\n' > .dvc/config.local \
    && mkdir -p data mlflow mlartifacts \
    && chown 1000:1000 /app /app/data /app/mlflow /app/mlartifacts /app/.dvc/config.local

USER 1000:1000
VOLUME ["/app/data", "/app/mlflow", "/app/mlartifacts"]
CMD ["dvc", "repro"]
