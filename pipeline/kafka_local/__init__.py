"""Local single-node Apache Kafka (KRaft) from Maven Central jars: fetch, start, stop, status.

    from pipeline.kafka_local import LocalKafka, default_state_dir
    status = LocalKafka(default_state_dir()).start()   # idempotent; returns once it answers

See broker.py for the state-dir layout.
"""

from .broker import (
    KAFKA_VERSION,
    POM_PATH,
    BrokerStatus,
    KafkaStartError,
    LocalKafka,
    default_state_dir,
    kafka_jar_name,
    mvn_fetch_command,
    pom_kafka_version,
    probe,
)

__all__ = [
    "KAFKA_VERSION",
    "POM_PATH",
    "BrokerStatus",
    "KafkaStartError",
    "LocalKafka",
    "default_state_dir",
    "kafka_jar_name",
    "mvn_fetch_command",
    "pom_kafka_version",
    "probe",
]
