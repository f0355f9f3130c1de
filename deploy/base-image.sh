#!/usr/bin/env bash
# Builds the base image of cronfleet's own images, cronfleet/debian:bookworm,
# without a registry: Debian 12 (minbase) with Python 3.11 and its venv
# module, made by debootstrap from the Debian mirror this machine's apt uses,
# imported with `docker import`. The Dockerfile's stages start FROM it
# (`make images`); elsewhere they can start from python:3.11-slim instead.
set -euo pipefail
IMAGE=${1:-cronfleet/debian:bookworm}
SUITE=${SUITE:-bookworm}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then exit 0; fi
command -v debootstrap >/dev/null || { echo "need debootstrap (Debian's debootstrap package)"; exit 1; }

# The mirrors apt uses here (deb822 .sources or classic sources.list lines).
apt_uris() {
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } || true
}
mirror=${MIRROR:-$(apt_uris | grep -i debian | grep -v security | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(apt_uris | grep -i debian-security | head -n 1)
security=${security:-http://deb.debian.org/debian-security}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $SUITE from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log"; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# apt inside the image (the postgres and etcd stages) uses the same mirror.
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
  "$mirror" "$SUITE" "$mirror" "$SUITE" "$security" "$SUITE" >"$rootfs/etc/apt/sources.list"
# Smaller: no package lists, caches or docs left in the image.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
tar --numeric-owner -C "$rootfs" -c . |
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "built $IMAGE"
