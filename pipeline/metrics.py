"""Every Prometheus metric of the project, declared once (global registry, served by Faust)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Sub-second processing: fine buckets from 1 ms up to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ARTICLES = Counter(
    "pipeline_articles",
    "Articles handled per stage and outcome (in, out, dlq).",
    ["stage", "outcome"],
)
DLQ_MESSAGES = Counter(
    "pipeline_dlq_messages",
    "Messages sent to the dead-letter topic, by stage and error code.",
    ["stage", "error"],
)
DELIVERY_REFUSED = Counter(
    "pipeline_delivery_refused",
    "Records the broker refused, each replaced by a DLQ record (error: output_too_large or "
    "delivery_failed).",
    ["topic", "error"],
)
DUPLICATES = Counter(
    "pipeline_duplicates",
    "Articles judged duplicates, by kind (exact_duplicate, near_duplicate).",
    ["kind"],
)
LANGUAGES = Counter(
    "pipeline_articles_by_language",
    "Enriched articles by dominant language ('und' when undecidable).",
    ["language"],
)
QUALITY_FLAGS = Counter(
    "pipeline_quality_flags",
    "Quality flags raised on enriched articles (not_an_article, empty, truncated).",
    ["flag"],
)
ENTITY_SKIPS = Counter(
    "pipeline_entity_skipped_characters",
    "Characters of text that got no entities, by reason (no_model:<lang>, undetermined).",
    ["reason"],
)
STAGE_SECONDS = Histogram(
    "pipeline_stage_duration_seconds",
    "Processing time per article and stage (batched stages divide by batch size).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    "pipeline_end_to_end_latency_seconds",
    "Time from the raw message's Kafka timestamp to the enriched record's send.",
    buckets=LATENCY_BUCKETS,
)
ENTITIES_PER_ARTICLE = Histogram(
    "pipeline_entities_per_article",
    "Entities found per enriched article.",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200),
)
DEDUP_SWEPT_KEYS = Counter(
    "pipeline_dedup_swept_keys",
    "Expired keys deleted from the dedup tables by the sweep, per table.",
    ["table"],
)
DEDUP_REMEMBERED_KEYS = Gauge(
    "pipeline_dedup_remembered_keys",
    "Live keys in a dedup table, counted by the last complete sweep pass of this worker.",
    ["table"],
)
MODEL_LOAD_SECONDS = Gauge(
    "pipeline_model_load_seconds",
    "Time it took to load each spaCy model at start-up.",
    ["language"],
)

# Consumer lag per partition, refreshed by pipeline.lag's timer on every worker. Only partitions
# the worker holds are exported; a revoked partition's series is removed.
CONSUMER_LAG = Gauge(
    "pipeline_consumer_lag",
    "Messages between a partition's end offset (asked of the broker) and the group's committed "
    "offset (the partition's first offset before the first commit), per partition this worker holds.",
    ["topic", "partition"],
)
PARTITION_LAST_PROGRESS = Gauge(
    "pipeline_partition_last_progress_timestamp_seconds",
    "Unix time a held partition last made progress: its committed offset advanced, or it was "
    "caught up (lag 0). Lag above 0 with an old timestamp is a stuck partition.",
    ["topic", "partition"],
)
LAG_REFRESH_ERRORS = Counter(
    "pipeline_consumer_lag_refresh_errors",
    "Lag refreshes that failed (broker unreachable, rebalance in progress); the gauges keep "
    "their last values meanwhile.",
)
UNREAD_REREADS = Counter(
    "pipeline_unread_rereads",
    "Times a partition was read again from a message the consumer fetched but never handed to "
    "an agent (dropped around a rebalance) while later ones were acked; nothing was committed "
    "past it.",
    ["topic", "partition"],
)
