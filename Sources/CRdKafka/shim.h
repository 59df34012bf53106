#ifndef KVB_CRDKAFKA_SHIM_H
#define KVB_CRDKAFKA_SHIM_H
// rdkafka_mock.h needs rdkafka.h first.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// rd_kafka_producev and its RD_KAFKA_V_* macros do not import into Swift: this wraps them.
/// Copies key and value; on success librdkafka owns `headers` (which may be NULL).
static inline rd_kafka_resp_err_t kvb_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                                              const void *key, size_t key_len,
                                              const void *value, size_t value_len,
                                              rd_kafka_headers_t *headers, void *opaque) {
    return rd_kafka_producev(rk,
                             RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, value_len),
                             RD_KAFKA_V_HEADERS(headers),
                             RD_KAFKA_V_OPAQUE(opaque),
                             RD_KAFKA_V_END);
}

/// The partition-list element at `index` (pointer arithmetic on a C array).
static inline rd_kafka_topic_partition_t *kvb_partition_at(rd_kafka_topic_partition_list_t *list, int index) {
    return &list->elems[index];
}
#endif
