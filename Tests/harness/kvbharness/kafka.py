"""Kafka itself, from the tests (confluent-kafka, with its own librdkafka): raw records in, what a
topic really holds, the topic list, a topic's settings, where a partition's leader is.

- `produce()`: raw records (forged, junk, or a cluster admin's);
- `records()`, `session_fragments()`: every record of a topic, and one publisher session's fragments;
- `cluster_topics()`, `partition_leaders()`: the topic list, and which broker leads each topic;
- `create_topic()`, `topic_config()`: CreateTopics with settings, and DescribeConfigs.
"""

from __future__ import annotations

import time


def record_size(message) -> int:
    """A confluent-kafka Message's value and headers: what counts against max.message.bytes, but
    for the key and framing."""
    return len(message.value() or b"") + sum(len(name) + len(value or b"") for name, value in (message.headers() or []))


def produce(bootstrap: str, topic: str, values: list[bytes], headers: list[list[tuple[str, bytes]]] | None = None,
            key: bytes | None = None, partition: int = 0) -> None:
    """Produces raw records (another application's, or forged ones) and waits for them."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "log_level": 3})
    errors = []
    for index, value in enumerate(values):
        producer.produce(topic, value=value, key=key, partition=partition,
                         headers=(headers[index] if headers else None),
                         on_delivery=lambda err, _msg: err and errors.append(err))
    remaining = producer.flush(15)
    assert remaining == 0 and not errors, f"producing to {topic}: {remaining} not delivered, errors {errors}"


def cluster_topics(bootstrap: str) -> set[str]:
    """Every topic the cluster has (listing does not create any)."""
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap, "log_level": 3}).list_topics(timeout=10).topics)


def records(bootstrap: str, topic: str, timeout: float = 20) -> list:
    """Every record of partition 0 of `topic`, from the beginning to the end (confluent-kafka
    Messages: `.value()`, `.headers()`, `.offset()`)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kvb-test-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True, "log_level": 3})
    consumer.assign([TopicPartition(topic, 0, 0)])
    found = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    return found
                continue
            found.append(message)
    finally:
        consumer.close()
    raise AssertionError(f"reading {topic} did not reach its end within {timeout} s ({len(found)} records)")


def session_fragments(messages: list, session: str) -> dict[int, bytes]:
    """The fragments of one publisher session found in a topic: sequence number -> bytes (end markers left out)."""
    fragments = {}
    for message in messages:
        headers = {name: value for name, value in (message.headers() or [])}
        if headers.get("kvb-session", b"").decode() == session and headers.get("kvb-end") != b"1":
            fragments[int(headers["kvb-seq"])] = message.value() or b""
    return fragments


def partition_leaders(bootstrap: str) -> dict[str, tuple[int, int]]:
    """Every topic's partition 0: (leader broker id, replica count)."""
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3}).list_topics(timeout=10)
    return {name: (t.partitions[0].leader, len(t.partitions[0].replicas)) for name, t in metadata.topics.items() if 0 in t.partitions}


def create_topic(bootstrap: str, topic: str, config: dict[str, str], replicas: int = 1) -> None:
    """Creates a topic with these settings through CreateTopics (as a cluster admin would)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for future in admin.create_topics([NewTopic(topic, 1, replicas, config=config)], request_timeout=10).values():
        future.result(timeout=15)


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """A topic's settings as the cluster reports them (DescribeConfigs)."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures = admin.describe_configs([ConfigResource("topic", topic)], request_timeout=10)
    return {name: entry.value for future in futures.values() for name, entry in future.result(timeout=15).items()}
