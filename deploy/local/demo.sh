#!/usr/bin/env bash
# npm run demo: bring the local stack up (idempotent; installs and starts what is missing),
# then tell the story of twofold against it (tools/demo.ts). The stack keeps running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash deploy/local/stack.sh up
exec node --conditions=twofold-source --import tsx tools/demo.ts "$@"
