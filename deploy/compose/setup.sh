#!/usr/bin/env bash
# Makes what the compose file needs, once: Garage's RPC secret and admin token, an S3 key
# for Berth, a CA and a server certificate for BERTH_HOST (the name clients use), and
# proxy.yaml. Existing files are kept.
set -euo pipefail
cd "$(dirname "$0")"
host=${1:?usage: setup.sh BERTH_HOST   (the name or address docker clients use)}

mkdir -p secrets certs
umask 077
[[ -s secrets/garage_rpc_secret ]] || openssl rand -hex 32 >secrets/garage_rpc_secret
[[ -s secrets/garage_admin_token ]] || openssl rand -hex 32 >secrets/garage_admin_token
[[ -s secrets/s3_access_key_id ]] || echo "GK$(openssl rand -hex 12)" >secrets/s3_access_key_id
[[ -s secrets/s3_secret_access_key ]] || openssl rand -hex 32 >secrets/s3_secret_access_key

if [[ ! -s certs/server.crt ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=berth compose CA" -keyout certs/ca.key -out certs/ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=$host" -keyout certs/server.key -out certs/server.csr
    printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$host" >certs/san.ext
    openssl x509 -req -in certs/server.csr -CA certs/ca.crt -CAkey certs/ca.key \
        -CAcreateserial -days 825 -extfile certs/san.ext -out certs/server.crt
    rm -f certs/server.csr certs/san.ext
fi
# The nodes run as uid 10001 and must read the key and the S3 secret.
chmod 644 certs/server.key secrets/s3_secret_access_key

if [[ ! -s proxy.yaml ]]; then
    umask 022
    cat >proxy.yaml <<YAML
listen: 0.0.0.0:5443
metrics_listen: 0.0.0.0:9090
tls: {cert: certs/server.crt, key: certs/server.key}
storage:
  s3:
    bucket: registry
    region: garage
    endpoint: http://garage:3900
    path_style: true
    root: /berth
    access_key_id: $(cat secrets/s3_access_key_id)
    secret_access_key_file: /run/secrets/s3_secret_access_key
  delete: {enabled: false}
# Add users with: docker compose run --rm berth-a hash-password
users: {}
acl: []
YAML
fi
echo "setup.sh: done; clients trust certs/ca.crt (/etc/docker/certs.d/$host:5443/ca.crt)"
