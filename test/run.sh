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
# The tests compute codes with an independent implementation: oathtool, from Debian.
if ! command -v oathtool >/dev/null; then
  echo "[test] installing oathtool from Debian (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq oathtool; } >.twofold/logs/apt-oathtool.log 2>&1 ||
    { echo "[test] FAILED: apt-get install oathtool; see .twofold/logs/apt-oathtool.log" >&2; exit 1; }
fi
exec npx vitest run "$@"
