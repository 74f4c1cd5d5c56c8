#!/usr/bin/env bash
# Start local Kafka + PostgreSQL for tests/CI and print their env lines:
#   set -a; eval "$(deploy/local/up.sh)"; set +a     # set -a => exported to pytest
# Only the KEY=VALUE lines go to stdout; all progress goes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# In parallel: on a cold machine apt (postgres) and Maven (kafka) each take a
# while, and neither needs the other.
"$HERE/postgres.sh" start >"$out/pg" &
pg_pid=$!
rc=0
"$HERE/kafka.sh" start >"$out/kafka" || rc=$?
wait "$pg_pid" || rc=$?   # never leave a half-done apt-get behind
((rc == 0)) || exit "$rc"
cat "$out/kafka" "$out/pg"
