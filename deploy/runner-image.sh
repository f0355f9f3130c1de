#!/usr/bin/env bash
# Builds the default runner image, cronfleet/runner:busybox, without a
# registry: a root filesystem made from Debian's busybox-static, imported
# with `docker import`. A non-root user `runner` (1000:1000) is included.
set -euo pipefail
IMAGE=${1:-cronfleet/runner:busybox}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then exit 0; fi
BUSYBOX=$(command -v busybox || echo /bin/busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic" \
  || { echo "need a static busybox (Debian's busybox-static)"; exit 1; }
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,etc,tmp,work,proc,sys,dev,root}
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nrunner:x:1000:1000:runner:/work:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nrunner:x:1000:\n' > "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/bin' -c 'WORKDIR /work' - "$IMAGE" >/dev/null
echo "built $IMAGE"
