#!/usr/bin/env bash
# npm test: bring the local stack up when it is not running (idempotent), then run the
# unit, chart and integration tests and print the runner's summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .twofold/logs
# The chart checks need helm and a schema validator built with `go install` (minutes on a
# cold machine, cached in .cache/tools). Build them in the background, at low priority,
# while the stack comes up and the other tests run; the chart tests wait for them.
nice -n 10 bash deploy/tools/install-tools.sh all >.twofold/logs/tools.log 2>&1 &
bash deploy/local/stack.sh up
bash deploy/local/stack.sh test-clients
exec npx vitest run "$@"
