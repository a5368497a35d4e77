#!/usr/bin/env bash
# Sets up the compose file's Garage once it runs: a layout with its one node, Berth's key
# (imported from secrets/), and the bucket `registry` that key may read and write.
set -euo pipefail
cd "$(dirname "$0")"
garage() { docker compose exec -T garage /garage "$@"; }

node=$(garage node id -q | cut -d@ -f1)
garage layout assign -z dc1 -c 10G "$node"
garage layout apply --version 1
garage key import --yes -n berth "$(cat secrets/s3_access_key_id)" \
    "$(cat secrets/s3_secret_access_key)"
garage bucket create registry
garage bucket allow --read --write --owner registry --key "$(cat secrets/s3_access_key_id)"
echo "init-garage.sh: bucket registry ready"
