#!/usr/bin/env bash
# Kafka's producer benchmark (kafka-producer-perf-test) from the jars that
# kafka.sh fetched, aimed at the local broker unless --bootstrap-server is given.
#   kafka-producer-perf.sh --topic bench --num-records 100000 --record-size 200 --throughput -1
# All arguments pass through to org.apache.kafka.tools.ProducerPerformance.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SALDO_CACHE_DIR:-$REPO/.cache}
LIBS=$CACHE/kafka-libs

if [[ ! -f $LIBS/.stamp ]]; then
  echo "no Kafka jars in $LIBS; run deploy/local/kafka.sh start first" >&2; exit 1
fi
args=("$@")
if [[ " $* " != *" --bootstrap-server "* ]]; then
  args=(--bootstrap-server "127.0.0.1:${SALDO_KAFKA_PORT:-19092}" "${args[@]}")
fi
# WARN level: keep the benchmark's own report readable on stdout.
exec java -Xmx512m -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
  -Dsaldo.log.level=WARN -cp "$LIBS/*" org.apache.kafka.tools.ProducerPerformance "${args[@]}"
