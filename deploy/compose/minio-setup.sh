#!/bin/sh
# One-shot: the documents bucket and Bulwark's own MinIO user, allowed that bucket only. The
# root credentials reach mc through its environment (MC_HOST_*), not its command line.
set -eu
export MC_CONFIG_DIR=/tmp/mc
mkdir -p "$MC_CONFIG_DIR/certs/CAs"
cp /run/secrets/ca.pem "$MC_CONFIG_DIR/certs/CAs/ca.pem"
MC_HOST_local="https://$(cat /run/secrets/minio_root_user):$(cat /run/secrets/minio_root_password)@minio:9000"
export MC_HOST_local
mc mb --ignore-existing local/bulwark-documents
cat > /tmp/policy.json <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
             "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
  "Resource": ["arn:aws:s3:::bulwark-documents", "arn:aws:s3:::bulwark-documents/*"]}]}
JSON
if ! mc admin policy info local bulwark-documents >/dev/null 2>&1; then
    mc admin policy create local bulwark-documents /tmp/policy.json
fi
mc admin user add local bulwark-app "$(cat /run/secrets/s3_secret_access_key)"
mc admin policy attach local bulwark-documents --user bulwark-app >/dev/null 2>&1 || true
# Whatever happened above, the user must now hold the policy, or Bulwark would start without
# access to its documents.
mc admin user info local bulwark-app | grep -q bulwark-documents
