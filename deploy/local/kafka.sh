#!/usr/bin/env bash
# Single-node Apache Kafka 4 (KRaft, combined broker+controller) for local tests
# and CI, run straight from Maven Central jars (no tarball download possible).
#   kafka.sh start|stop|status|env
# stdout carries only the SALDO_KAFKA_BOOTSTRAP=... line; progress goes to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SALDO_CACHE_DIR:-$REPO/.cache}
PORT=${SALDO_KAFKA_PORT:-19092}
CTRL_PORT=${SALDO_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
POM=$HERE/kafka/pom.xml
LIBS=$CACHE/kafka-libs
RUN=$CACHE/run/kafka          # data + config, wiped on every start
PIDFILE=$CACHE/run/kafka.pid  # outside $RUN so a wipe never loses a live pid
LOG=$CACHE/run/kafka.log
BOOTSTRAP=127.0.0.1:$PORT

log() { echo "[kafka] $*" >&2; }
env_line() { echo "SALDO_KAFKA_BOOTSTRAP=$BOOTSTRAP"; }

running_pid() {
  # The pid must still be *our* broker, not a recycled pid of something else.
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ -n $pid ]] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -x 'kafka\.Kafka' >/dev/null &&
    echo "$pid"
}

still_alive() {  # a child we started: present and not a zombie (no ps on slim machines)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # drop "pid (comm) ", leaving the state letter first
  [[ -n $stat && ${stat:0:1} != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_tools() {
  command -v java >/dev/null && command -v mvn >/dev/null && return
  log "installing java + maven from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq openjdk-17-jre-headless maven >&2
}

fetch_libs() {
  # The stamp ties the jar set to the pom: editing the pom (e.g. a version bump)
  # re-fetches, anything else is a no-op so warm starts never touch the network.
  local hash
  hash=$(sha256sum "$POM" | cut -d' ' -f1)
  [[ -f $LIBS/.stamp && $(<"$LIBS/.stamp") == "$hash" ]] && return
  ensure_tools
  log "fetching Kafka jars from Maven Central into $LIBS (first run only)"
  rm -rf "$LIBS"
  # mvn -q still prints errors on stdout; keep stdout clean for eval.
  mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIBS" >&2
  echo "$hash" >"$LIBS/.stamp"
}

java_run() {  # java_run <main class> [args...] -- used for short-lived tools
  java -Xmx256m -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
    -Dsaldo.log.level=WARN -cp "$LIBS/*" "$@"
}

write_config() {
  cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
# Dynamic (KIP-853) quorum of one, matching "format --standalone" below.
controller.quorum.bootstrap.servers=127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data
num.partitions=3
auto.create.topics.enable=true
# Single node: every internal topic must be satisfiable with one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests should not sit through the 3 s default before a group's first rebalance.
group.initial.rebalance.delay.ms=0
# 2-core box: 50 partitions per internal topic makes the first consumer group /
# first transaction noticeably slow to come up; 10 is plenty locally.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
num.io.threads=4
num.network.threads=2
PROPS
}

start() {
  local pid
  if pid=$(running_pid); then
    log "already running (pid $pid)"; env_line; return
  fi
  if port_open "$PORT" || port_open "$CTRL_PORT"; then
    log "port $PORT or $CTRL_PORT is taken by another process; set SALDO_KAFKA_PORT"; exit 1
  fi
  fetch_libs
  rm -rf "$RUN" && mkdir -p "$RUN"
  write_config
  # Any 16-byte base64url id works; generating it in bash saves a JVM start.
  # (+/ are mapped to letters so the id can never start with '-'.)
  local cluster_id
  cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' 'Ab' | tr -d '=')
  java_run kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$RUN/server.properties" >&2

  log "starting broker on $BOOTSTRAP (log: $LOG)"
  # setsid + nohup: the broker must outlive the calling shell / CI step.
  # 9>&- : the broker must not inherit (and so hold forever) the flock below.
  KAFKA_HEAP=${SALDO_KAFKA_HEAP:--Xms256m -Xmx768m}
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" \
    </dev/null >"$LOG" 2>&1 9>&- &
  local launched=$!
  echo "$launched" >"$PIDFILE"

  # Ready = the server says so AND the client port accepts connections.
  local deadline=$((SECONDS + ${SALDO_KAFKA_START_TIMEOUT:-90}))
  until grep -q 'Kafka Server started' "$LOG" && port_open "$PORT"; do
    # Not running_pid(): until the child has exec'd java its cmdline is still
    # this script's, and on a loaded machine that window is long enough to be
    # mistaken for "the broker exited" (it failed CI once that way).
    if ! still_alive "$launched"; then
      log "broker exited during startup; last log lines:"; tail -n 40 "$LOG" >&2
      rm -f "$PIDFILE"; exit 1
    fi
    if ((SECONDS > deadline)); then
      log "not ready after timeout; last log lines:"; tail -n 40 "$LOG" >&2
      stop; exit 1
    fi
    sleep 0.3
  done
  log "ready"
  env_line
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    log "not running"; rm -f "$PIDFILE"; return
  fi
  log "stopping pid $pid"
  kill -TERM "$pid"
  # Controlled shutdown of a single node normally takes a few seconds.
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.3
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 30 s, sending SIGKILL"; kill -KILL "$pid" || true
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid
  if pid=$(running_pid); then echo "kafka: running (pid $pid) on $BOOTSTRAP"
  else echo "kafka: stopped"; return 3; fi
}

mkdir -p "$CACHE/run"
# Serialise concurrent start/stop calls (e.g. parallel CI steps) on one cache.
exec 9>"$CACHE/run/kafka.lock"
flock 9

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_line ;;
  *) echo "usage: $0 {start|stop|status|env}" >&2; exit 2 ;;
esac
