#!/usr/bin/env bash
# npm test: bring the local stack up when it is not running (idempotent), then run the
# unit and integration tests and print the runner's summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/local/stack.sh up
exec npx vitest run "$@"
