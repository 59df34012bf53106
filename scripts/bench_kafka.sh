#!/usr/bin/env bash
# `make bench`: the produce → consume round trip on the embedded cluster and on Tansu, side by
# side, each with kvb's tuned settings and with librdkafka's defaults. Tansu needs the librdkafka
# 2.x of confluent-kafka's wheel (Debian's 2.0.2 cannot talk to it); the librdkafka column says
# which one each line used.
#   scripts/bench_kafka.sh KVB_BENCH PYTHON
set -euo pipefail
bench="$1"
py="$2"
read -r tansu lib < <("$py" -c 'import sys; sys.path.insert(0, "Tests/harness")
from kvbharness.processes import tansu_binary, wheel_librdkafka_dir
print(tansu_binary(), wheel_librdkafka_dir())')
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

"$bench" kafka --label embedded
LD_LIBRARY_PATH="$lib" "$bench" kafka --label tansu --bootstrap "127.0.0.1:$port" | tail -n +2
