#!/usr/bin/env bash
# Stop what up.sh started. Both are attempted even if one fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rc=0
"$HERE/kafka.sh" stop || rc=$?
"$HERE/postgres.sh" stop || rc=$?
exit "$rc"
