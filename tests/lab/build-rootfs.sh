#!/bin/bash
# Build (once) the Debian bookworm image every lab host boots from, and print its path.
#   build-rootfs.sh          build if missing, print the image dir
#   build-rootfs.sh --path   only print where the image for these scripts lives
# The image dir is named after a hash of this script and prepare-rootfs.sh, so editing
# either builds a new image while labs still running keep using the old one.
# Callers (hostlab) hold the lab-wide lock; the build goes to a temp dir and is renamed
# into place only when complete, so a crash mid-build never leaves a half image behind.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
LAB_DIR=${HOSTLAB_DIR:-$(readlink -f "$HERE/../..")/.lab}
ARCH=$(dpkg --print-architecture)
STAMP=$(cat "$HERE/build-rootfs.sh" "$HERE/prepare-rootfs.sh" | sha256sum | cut -c1-10)
IMAGE=$LAB_DIR/image/bookworm-$ARCH-$STAMP

# Packages the hosts need at test time, so nothing has to be downloaded then:
# ssh + python for Ansible, systemd/dbus for real services (hostnamed, timedated),
# and everything roles/rpi_base and roles/storage (open-iscsi, nfs-common) install or remove,
# so their apt steps are no-ops in the lab.
PACKAGES=openssh-server,python3,python3-apt,sudo,iproute2,systemd,systemd-sysv,dbus,procps,kmod,tzdata,ca-certificates,curl,jq,dphys-swapfile,iputils-ping,less,open-iscsi,nfs-common

if [ "${1:-}" = --path ]; then echo "$IMAGE"; exit 0; fi
if [ -f "$IMAGE/.complete" ]; then echo "$IMAGE"; exit 0; fi

need=""
for p in debootstrap zstd openssh-client iproute2 util-linux; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >&2
fi

# the Debian mirror apt on this machine already uses (deb822 or one-line sources)
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || { echo "build-rootfs: no Debian mirror found in apt sources" >&2; exit 1; }

mkdir -p "$LAB_DIR/image"
TMP=$(mktemp -d "$LAB_DIR/image/.build-XXXXXX")
trap 'umount "$TMP/rootfs/proc" 2>/dev/null || true; rm -rf "$TMP"' EXIT
echo "build-rootfs: debootstrap bookworm ($ARCH) from $MIRROR -> $IMAGE" >&2
debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" bookworm "$TMP/rootfs" "$MIRROR" >&2
"$HERE/prepare-rootfs.sh" "$TMP/rootfs" "$TMP" "$MIRROR" >&2
touch "$TMP/.complete"
rm -rf "$IMAGE"
mv "$TMP" "$IMAGE"
trap - EXIT
echo "$IMAGE"
