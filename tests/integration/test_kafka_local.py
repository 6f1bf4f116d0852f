"""The real local broker: start it (idempotently), then create and list a topic.

Never skips: when no broker answers on 127.0.0.1:9092 the test starts one (fetching the jars on
a fresh machine) or fails with the broker's log. The shared broker is left running.
"""

from __future__ import annotations

import uuid

import pytest
from kafka.admin import KafkaAdminClient

from pipeline.kafka_local import KAFKA_VERSION, LocalKafka, default_state_dir, kafka_jar_name

pytestmark = pytest.mark.integration


def test_start_is_idempotent_and_the_broker_serves_admin_requests() -> None:
    kafka = LocalKafka(default_state_dir())
    first = kafka.start(timeout=120)
    assert first.running, first.detail
    assert first.bootstrap == "127.0.0.1:9092"

    again = kafka.start(timeout=120)
    assert again.running, again.detail
    assert "already running" in again.detail
    assert again.pid == first.pid

    status = kafka.status()
    assert status.running, status.detail
    if status.pid is not None:  # launched from this checkout (not, e.g., by another clone)
        assert (kafka.libs_dir / kafka_jar_name(KAFKA_VERSION)).is_file()

    topic = f"kafka-local-it-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=status.bootstrap, client_id="kafka-local-it")
    try:
        result = admin.create_topics(
            {topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True
        )
        (created,) = result["topics"]
        assert created["name"] == topic and created["error_code"] == 0
        assert topic in admin.list_topics()
        (described,) = admin.describe_topics([topic])
        assert len(described["partitions"]) == 3
    finally:
        admin.delete_topics([topic])
        admin.close()
