#!/usr/bin/env bash
# deploy/k8s/validate.sh — render every kustomization under deploy/k8s and check each object
# against the Kubernetes API's JSON schemas, offline. No cluster needed.
#
#   deploy/k8s/validate.sh [OUT_DIR]
#
# Renders base/ and each overlay with kustomize into OUT_DIR (a temporary directory unless
# given) as <path>.yaml (base.yaml, overlays-local.yaml), then validates every object with
# kubernetes-validate in strict mode (an unknown or misspelt field is an error) against each
# Kubernetes version in KUBERNETES_VERSIONS. An object whose kind has no schema (a CRD) fails
# too: unvalidated is not valid. e2e/tests/k8s_manifests.rs runs this and then checks in Rust
# what schemas cannot see (env vars against the services' Configs, ports, selectors).
#
# The tools are installed once into .backends/tools (CHIRP_BACKENDS_DIR/tools), at pinned
# versions, from package registries only: kustomize built with `go install` through the Go
# module proxy, kubernetes-validate (which ships the schemas of every Kubernetes version)
# from PyPI into a virtualenv. Nothing is downloaded when the tools are there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
K8S_DIR=$PWD
ROOT=$(cd ../.. && pwd)

KUSTOMIZE_VERSION=v5.8.2
KUBERNETES_VALIDATE_VERSION=1.37.0
# The oldest Kubernetes these manifests support (native gRPC probes and the pod-index label
# need ≥ 1.28) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS=(1.30 1.37)

TOOLS=${CHIRP_BACKENDS_DIR:-$ROOT/.backends}/tools
KUSTOMIZE=$TOOLS/kustomize-$KUSTOMIZE_VERSION/kustomize
VALIDATOR_VENV=$TOOLS/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION
VALIDATOR=$VALIDATOR_VENV/bin/kubernetes-validate

mkdir -p "$TOOLS"
# One installer at a time: a test run and a person may start this together.
exec 9>"$TOOLS/.install.lock"
flock 9

if [[ ! -x $KUSTOMIZE ]]; then
  echo "==> installing kustomize $KUSTOMIZE_VERSION into $(dirname "$KUSTOMIZE")" >&2
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || { echo "validate.sh: kustomize needs Go to build (go not found)" >&2; exit 1; }
  # A private GOPATH and build cache, deleted afterwards: only the binary is kept.
  scratch=$(mktemp -d "$TOOLS/.go.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  GOPATH=$scratch GOMODCACHE=$scratch/mod GOCACHE=$scratch/cache GOBIN=$scratch/bin \
    GOFLAGS=-modcacherw CGO_ENABLED=0 \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mkdir -p "$(dirname "$KUSTOMIZE")"
  mv "$scratch/bin/kustomize" "$KUSTOMIZE"
  rm -rf "$scratch"
  trap - EXIT
fi

# A virtualenv cannot be moved once made, so it is built in place and marked complete last.
if [[ ! -f $VALIDATOR_VENV/.complete ]]; then
  echo "==> installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VALIDATOR_VENV" >&2
  rm -rf "$VALIDATOR_VENV"
  python3 -m venv "$VALIDATOR_VENV"
  "$VALIDATOR_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  touch "$VALIDATOR_VENV/.complete"
fi
flock -u 9

OUT=${1:-}
if [[ -z $OUT ]]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"

versions=()
for version in "${KUBERNETES_VERSIONS[@]}"; do versions+=(--kubernetes-version "$version"); done

failed=0
while IFS= read -r kustomization; do
  dir=$(dirname "$kustomization")
  dir=${dir#./}
  rendered=$OUT/${dir//\//-}.yaml
  echo "==> $dir" >&2
  if ! "$KUSTOMIZE" build "$dir" >"$rendered"; then
    rm -f "$rendered"
    echo "validate.sh: kustomize could not build $dir" >&2
    failed=1
    continue
  fi
  # --quiet prints only problems. A WARN is a kind without a schema, which the validator
  # itself lets pass.
  objects=$(grep -c '^kind: ' "$rendered" || true)
  if report=$("$VALIDATOR" --strict --quiet "${versions[@]}" "$rendered" 2>&1) && [[ -z $report ]]; then
    echo "    $objects objects, valid for Kubernetes ${KUBERNETES_VERSIONS[*]}" >&2
  else
    echo "${report:-kubernetes-validate failed without a word}" | sed "s|$OUT/||" >&2
    failed=1
  fi
done < <(cd "$K8S_DIR" && find . -name kustomization.yaml | sort)

if [[ $failed -ne 0 ]]; then
  echo "validate.sh: the manifests are not valid (above)" >&2
  exit 1
fi
echo "==> every kustomization renders and validates (rendered in $OUT)" >&2
