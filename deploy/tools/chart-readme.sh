#!/usr/bin/env bash
# Regenerates helm/twofold/README.md from the `# --` comments in values.yaml with helm-docs,
# then formats it with the repository's prettier settings (npm run lint checks it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HELM_DOCS="$(bash "$ROOT/deploy/tools/install-tools.sh" helm-docs | sed -n 's/^helm-docs=//p')"
cd "$ROOT/helm/twofold"
"$HELM_DOCS" --chart-search-root . --template-files README.md.gotmpl --output-file README.md --log-level warning
cd "$ROOT" && npx prettier --log-level warn --write helm/twofold/README.md
echo "wrote helm/twofold/README.md"
