# pocnet + Flower image for the GFML-on-Flower services of deploy/flower-compose.yaml
# (SuperLink, SuperNodes, the `flwr run` job). Build from the repository root:
#   docker build -f deploy/flower.Dockerfile -t pocnet-flower .
# Separate from deploy/Dockerfile: flwr 1.42.0 pins an older fastapi/starlette/uvicorn than the node's.
FROM python:3.11-slim
# offline Fashion-MNIST (fml/data.py reads /usr/share/datasets/fashion-mnist)
RUN apt-get update && apt-get install -y --no-install-recommends dataset-fashion-mnist && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY node node
COPY consensus consensus
COPY p2p p2p
COPY models models
COPY games games
COPY fml fml
COPY pocnet pocnet
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir ".[flower]"
ENV PYTHONUNBUFFERED=1
