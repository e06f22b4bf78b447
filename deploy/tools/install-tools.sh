#!/usr/bin/env bash
# Builds the tools that check the chart and the compose file, from the Go module proxy,
# into .cache/tools (ignored by git). Cached: a tool is rebuilt only when its pinned
# version changes. Safe to run concurrently (one lock per tool).
#
#   bash deploy/tools/install-tools.sh [helm|kubectl-validate|crds|helm-docs|compose|all]...
#
# Prints NAME=PATH for each tool asked for. The first build on a fresh machine takes
# minutes (helm and kubectl-validate pull most of the Kubernetes client libraries).
#
#   helm              helm.sh/helm/v3                   lint, template
#   kubectl-validate  sigs.k8s.io/kubectl-validate      offline validation; embeds the
#                                                        Kubernetes OpenAPI v3 schemas 1.23–1.30
#   crds              sigs.k8s.io/controller-tools       CRDs for ServiceMonitor, PrometheusRule
#                     + prometheus-operator, KEDA types  and ScaledObject, generated from the
#                                                        operators' Go API types (crdgen/)
#   helm-docs         github.com/norwoodj/helm-docs     helm/twofold/README.md from values.yaml
#   compose           github.com/docker/compose/v2      `docker compose config` (compose/)
set -euo pipefail

HELM_VERSION=v3.22.0
# helm's default Kubernetes version (for kubeVersion checks) is set at link time, as its
# Makefile does from the client-go it uses (v0.37 → 1.37); go install alone leaves 1.20.
HELM_KUBE_MINOR=37
KUBECTL_VALIDATE_VERSION=v0.0.4
HELM_DOCS_VERSION=v1.14.2
# crds and compose are pinned by the go.mod and go.sum beside this script.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TOOLS="${TWOFOLD_TOOLS_DIR:-$ROOT/.cache/tools}"
BIN="$TOOLS/bin"
LOGS="$TOOLS/logs"
# Use the Go on this machine; never fetch another toolchain behind our back.
export GOTOOLCHAIN=local

say() { printf '\033[1m[tools]\033[0m %s\n' "$*" >&2; }
fail() { printf '\033[31m[tools] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || fail "go is missing: the tools are built with 'go install' (apt-get install golang-go, Go 1.26+)"
mkdir -p "$BIN" "$LOGS"

# ensure NAME STAMP BUILD-FUNCTION: runs the build unless BIN/.NAME.stamp holds STAMP.
ensure() {
  local name="$1" stamp="$2" build="$3" log="$LOGS/$1.log"
  exec 9>"$TOOLS/.$name.lock"
  flock 9
  if [ "$(cat "$BIN/.$name.stamp" 2>/dev/null)" != "$stamp" ]; then
    say "building $name ($stamp); log in $log"
    local started=$SECONDS
    if ! "$build" >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      fail "building $name failed (the Go module proxy refused a module, or the build broke); see $log"
    fi
    echo "$stamp" >"$BIN/.$name.stamp"
    say "built $name in $((SECONDS - started)) s"
  fi
  exec 9>&-
}

# The go.mod and go.sum of a helper module, hashed: a change rebuilds its tool.
module_stamp() { cat "$HERE/$1/go.mod" "$HERE/$1/go.sum" | sha1sum | cut -c1-12; }

build_helm() {
  local x=helm.sh/helm/v3
  GOBIN="$BIN" go install -ldflags "-s -w -X $x/internal/version.version=$HELM_VERSION -X $x/internal/version.metadata= \
    -X $x/pkg/chartutil.k8sVersionMajor=1 -X $x/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR \
    -X $x/pkg/lint/rules.k8sVersionMajor=1 -X $x/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR" \
    "$x/cmd/helm@$HELM_VERSION"
}
build_kubectl_validate() { GOBIN="$BIN" go install "sigs.k8s.io/kubectl-validate@$KUBECTL_VALIDATE_VERSION"; }
build_helm_docs() { GOBIN="$BIN" go install "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"; }
build_crds() {
  local out="$TOOLS/crds"
  (cd "$HERE/crdgen" && go build -o "$BIN/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen)
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  # controller-gen resolves the packages through crdgen/go.mod, so it runs from there.
  (cd "$HERE/crdgen" && "$BIN/controller-gen" crd:allowDangerousTypes=true,maxDescLen=0 \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
    paths=github.com/kedacore/keda/v2/apis/keda/v1alpha1 \
    output:crd:dir="$out.tmp")
  # Keep only the kinds the chart renders: fewer CRDs, faster validation.
  mkdir -p "$out.tmp/keep"
  mv "$out.tmp"/monitoring.coreos.com_servicemonitors.yaml "$out.tmp"/monitoring.coreos.com_prometheusrules.yaml \
    "$out.tmp"/keda.sh_scaledobjects.yaml "$out.tmp/keep/"
  rm -rf "$out" && mv "$out.tmp/keep" "$out" && rm -rf "$out.tmp"
}
build_compose() {
  local version
  version="$(sed -n 's/^\s*github.com\/docker\/compose\/v2 \(v[^ ]*\).*/\1/p' "$HERE/compose/go.mod" | head -n1)"
  mkdir -p "$TOOLS/docker/cli-plugins"
  (cd "$HERE/compose" && go build -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
    -o "$TOOLS/docker/cli-plugins/docker-compose" github.com/docker/compose/v2/cmd)
  ln -sf "$TOOLS/docker/cli-plugins/docker-compose" "$BIN/docker-compose"
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(all)
for tool in "${want[@]}"; do
  case "$tool" in
    helm) ensure helm "$HELM_VERSION-k8s1.$HELM_KUBE_MINOR" build_helm && echo "helm=$BIN/helm" ;;
    kubectl-validate)
      ensure kubectl-validate "$KUBECTL_VALIDATE_VERSION" build_kubectl_validate && echo "kubectl-validate=$BIN/kubectl-validate" ;;
    crds) ensure crds "$(module_stamp crdgen)" build_crds && echo "crds=$TOOLS/crds" ;;
    helm-docs) ensure helm-docs "$HELM_DOCS_VERSION" build_helm_docs && echo "helm-docs=$BIN/helm-docs" ;;
    compose) ensure compose "$(module_stamp compose)" build_compose && echo "docker-compose=$BIN/docker-compose" ;;
    all) bash "${BASH_SOURCE[0]}" helm kubectl-validate crds helm-docs compose ;;
    *) fail "unknown tool '$tool' (helm, kubectl-validate, crds, helm-docs, compose or all)" ;;
  esac
done
