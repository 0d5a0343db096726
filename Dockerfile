# picotui in a container, for NVIDIA cards from Pascal (GTX 10xx, sm_61) up to Hopper.
#
#   docker build -t picotui .
#   docker run --gpus all -it -v "$PWD/models:/models" -v "$PWD/outputs:/outputs" picotui
#
# Needs the NVIDIA Container Toolkit on the host. The image holds no model weights: put
# checkpoints in ./models on the host (see models/README.md).

# CUDA 12.6 because PyTorch's cu126 wheels are the last that carry Pascal (sm_60/61) kernels; the
# cu13x builds start at Turing. Ubuntu 24.04 rather than 22.04 because its own python3 *is* 3.12,
# so no third-party PPA is needed for the interpreter.
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'

# Ubuntu 24.04 marks its python as externally managed (PEP 668): everything goes in a venv.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv

# torch 2.13.0+cu126: the newest release inside pyproject's range (torch>=2.6,<2.14) that PyTorch
# published for CUDA 12.6. PyTorch builds its cu126 wheels for Maxwell, Pascal, Volta, Turing,
# Ampere and Hopper; cu128 dropped Pascal in 2.8, 2.14 keeps cu126 only as "legacy" and 2.15 stops
# publishing it. The default PyPI wheel (CUDA 13) would install fine here and then fail on a
# GTX 1060 with "no kernel image is available". Installed first and on its own layer because it
# is by far the biggest download and changes least often. The CUDA libraries come with the wheel
# (nvidia-* packages); the base image contributes the driver hookup and compat settings.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

# The project itself. Dependencies resolve from PyPI; torch is already satisfied by the cu126
# build above, so pip keeps it.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY picotui ./picotui
COPY assets ./assets
RUN pip install . && python -c "import torch, picotui; assert torch.__version__.endswith('+cu126'), torch.__version__"

# A non-root user with uid 1000, the usual owner of the host folders that get mounted. Ubuntu's
# image ships a user "ubuntu" with that uid; it is replaced so the name says what it is for.
# HOME is world-writable too so `docker run --user "$(id -u):$(id -g)"` still has somewhere to
# keep its config, log and demo model.
RUN (userdel --remove ubuntu 2>/dev/null || true) \
    && (groupdel ubuntu 2>/dev/null || true) \
    && groupadd --gid 1000 picotui \
    && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash picotui \
    && mkdir -p /models/checkpoints /models/vae /models/loras /models/embeddings /outputs \
    && chown -R picotui:picotui /models /outputs \
    && chmod 1777 /home/picotui /models /outputs

ENV HOME=/home/picotui \
    PICOTUI_MODELS=/models \
    PICOTUI_OUTPUTS=/outputs \
    TERM=xterm-256color \
    COLORTERM=truecolor \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1

# uid/gid of the "picotui" user made above; numeric so the runtime need not look the name up.
USER 1000:1000
WORKDIR /home/picotui
VOLUME ["/models", "/outputs"]

# An interactive TUI: run with -it (a TTY and stdin). Arguments after the image name go to
# picotui, e.g. `docker run --gpus all -it ... picotui --check` or `... picotui paths`.
ENTRYPOINT ["picotui"]
CMD []
