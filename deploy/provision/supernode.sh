#!/usr/bin/env bash
# The lab's supernode: lazybd-supernode.service on LAZYBD_ADDRESS:5000 in front of
# LAZYBD_REGISTRY, accepting LAZYBD_SUPERNODE_TOKEN, and (LAZYBD_P2P=1) the nodes' P2P DHT on
# LAZYBD_ADDRESS:49737. See common.sh for the modes and settings.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
provision_init "$@"
need_token

install_lazybd

put /etc/lazybd/supernode.token 600 <<<"$LAZYBD_SUPERNODE_TOKEN"
dht=
[[ $LAZYBD_P2P != 1 ]] || dht=" --dht-listen $LAZYBD_ADDRESS:$DHT_PORT"
put /etc/lazybd/supernode.env 644 <<ENV
# Written by lazybd's deploy/provision/supernode.sh; see supernode.env.example.
LAZYBD_SUPERNODE_LISTEN=$LAZYBD_ADDRESS:5000
LAZYBD_SUPERNODE_ARGS="--upstream $LAZYBD_REGISTRY --plain-http$dht"
ENV

start_unit lazybd-supernode.service
