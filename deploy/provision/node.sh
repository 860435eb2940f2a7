#!/usr/bin/env bash
# A lab node: lazybd.service reading images from LAZYBD_REGISTRY through the supernode
# (LAZYBD_SUPERNODE, LAZYBD_SUPERNODE_TOKEN), from its neighbours first with LAZYBD_P2P=1,
# metrics on LAZYBD_ADDRESS:9100; NBD tools and qemu to attach and boot its clones. See
# common.sh for the modes and settings.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
provision_init "$@"
need_token

need_packages libnbd-bin qemu-utils qemu-system-x86
install_lazybd

put /etc/lazybd/supernode.token 600 <<<"$LAZYBD_SUPERNODE_TOKEN"
own_by_service_user /etc/lazybd/supernode.token
p2p=
[[ $LAZYBD_P2P != 1 ]] || p2p=" --p2p-bootstrap ${LAZYBD_SUPERNODE%:*}:$DHT_PORT --p2p-host $LAZYBD_ADDRESS"
put /etc/lazybd/lazybd.env 644 <<ENV
# Written by lazybd's deploy/provision/node.sh; see lazybd.env.example.
LAZYBD_SERVE_ARGS="--plain-http --supernode http://$LAZYBD_SUPERNODE --token-file /etc/lazybd/supernode.token --metrics $LAZYBD_ADDRESS:9100$p2p"
ENV

start_unit lazybd.service
