#!/bin/sh
# One-shot: the documents bucket and Bulwark's own MinIO user, allowed that bucket only.
set -eu
export MC_CONFIG_DIR=/tmp/mc
root_user=$(cat /run/secrets/minio_root_user)
root_password=$(cat /run/secrets/minio_root_password)
mkdir -p "$MC_CONFIG_DIR/certs/CAs"
cp /run/secrets/ca.pem "$MC_CONFIG_DIR/certs/CAs/ca.pem"
mc alias set local https://minio:9000 "$root_user" "$root_password" >/dev/null
mc mb --ignore-existing local/bulwark-documents
cat > /tmp/policy.json <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
             "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
  "Resource": ["arn:aws:s3:::bulwark-documents", "arn:aws:s3:::bulwark-documents/*"]}]}
JSON
mc admin policy create local bulwark-documents /tmp/policy.json 2>/dev/null || true
mc admin user add local bulwark-app "$(cat /run/secrets/s3_secret_access_key)"
mc admin policy attach local bulwark-documents --user bulwark-app 2>/dev/null || true
