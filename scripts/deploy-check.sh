#!/usr/bin/env bash
# Deployment artefacts, checked offline: checkov (pinned, in its own venv under target/) on
# the Dockerfile. A failed check fails the run; a skip needs its reason written beside it in
# the artefact (`# checkov:skip=CKV_…: why`). Building the image itself needs a container
# engine and registry access that the CI machines lack (README, "Container image").
#
#   scripts/deploy-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION=3.3.30
VENV=target/deploy-venv
if [ ! -x "$VENV/bin/checkov" ] || ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
# No network: no policy downloads, no guideline look-ups.
BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" --quiet --compact --skip-download \
    --framework dockerfile --file Dockerfile
