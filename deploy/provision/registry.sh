#!/usr/bin/env bash
# The lab's registry: Debian's docker-registry (CNCF distribution) on LAZYBD_ADDRESS:5000,
# plain http, no auth (a private lab network), deletes allowed; plus the lazybd CLI to create
# and push images from here. See common.sh for the modes and settings.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
provision_init "$@"

need_packages docker-registry
install_lazybd

storage=$ROOT/var/lib/docker-registry
mkdir -p "$storage"
[[ $NO_SYSTEMD == 1 ]] || chown docker-registry: "$storage"
put /etc/docker/registry/config.yml 644 <<YAML
# Written by lazybd's deploy/provision/registry.sh.
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: $LAZYBD_ADDRESS:5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YAML

if [[ $NO_SYSTEMD == 1 ]]; then
  # The package's own unit, as installing it would have put it in the root.
  mkdir -p "$ROOT/lib/systemd/system"
  cp /lib/systemd/system/docker-registry.service "$ROOT/lib/systemd/system/"
fi
start_unit docker-registry.service /lib/systemd/system/docker-registry.service
