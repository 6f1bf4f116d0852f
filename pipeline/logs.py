"""Structured logs: one JSON object per line on stderr, for the CLI and the Faust worker alike."""

from __future__ import annotations

import logging.config
from typing import Any


def logging_config(level: str) -> dict[str, Any]:
    """A dictConfig; Faust's Worker takes it as is, so its own logs are JSON too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "asctime": "time"},
            }
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # Per-message chatter of the Kafka clients is noise at INFO.
        "loggers": {"aiokafka": {"level": "WARNING"}, "kafka": {"level": "WARNING"}},
    }


def configure_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))
