#!/bin/bash
# Customise a debootstrapped bookworm rootfs into the lab's base image (common to Pi and
# plain hosts; the Pi-only files are an overlay layer made from tests/lab/fixtures at `up`).
# Usage: prepare-rootfs.sh ROOTFS KEYDIR MIRROR
set -euo pipefail
R=${1:?rootfs dir}; K=${2:?key dir}; MIRROR=${3:?debian mirror URL}
[ -f "$K/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hostlab -f "$K/id_ed25519"

# apt in the hosts uses the same Debian mirror as the machine that built them
printf 'deb %s bookworm main contrib non-free non-free-firmware\ndeb %s bookworm-updates main contrib non-free non-free-firmware\n' \
  "$MIRROR" "$MIRROR" > "$R/etc/apt/sources.list"
rm -f "$R/usr/sbin/policy-rc.d"   # daemons installed by apt may start, as on a real Pi
# No background apt runs: the hosts have no route to a mirror, and a timer holding the
# dpkg lock in the middle of a test run would make it flaky.
for t in apt-daily.timer apt-daily-upgrade.timer; do ln -sf /dev/null "$R/etc/systemd/system/$t"; done

# dphys-swapfile stays installed and enabled (the role must disable and remove it), but it
# must never run here: swap is kernel-global, the lab must not touch the machine's swap.
install -d "$R/etc/systemd/system/dphys-swapfile.service.d"
printf '# hostlab: swap is machine-global, never set it up inside a lab host\n[Unit]\nConditionVirtualization=!container\n' \
  > "$R/etc/systemd/system/dphys-swapfile.service.d/10-hostlab.conf"

# ssh: host keys are generated per host at `up`; key-only root login
rm -f "$R"/etc/ssh/ssh_host_*
cat > "$R/etc/ssh/sshd_config.d/10-hostlab.conf" <<'S'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
S
install -d -m 700 "$R/root/.ssh"
install -m 600 "$K/id_ed25519.pub" "$R/root/.ssh/authorized_keys"

# a first user with passwordless sudo (as rpi-imager / userconf creates on Pi OS)
chroot "$R" id pi >/dev/null 2>&1 || chroot "$R" useradd -m -s /bin/bash -G sudo,adm,dialout,video,plugdev,users pi
install -d -m 700 -o 1000 -g 1000 "$R/home/pi/.ssh"
install -m 600 -o 1000 -g 1000 "$K/id_ed25519.pub" "$R/home/pi/.ssh/authorized_keys"
echo 'pi ALL=(ALL) NOPASSWD: ALL' > "$R/etc/sudoers.d/010_pi-nopasswd"; chmod 440 "$R/etc/sudoers.d/010_pi-nopasswd"

# open-iscsi's postinst named the initiator once for the image; like a cloned SD card, ask for a
# fresh IQN per host (Debian's iscsid startup checks replace GenerateName=yes with a new name).
[ ! -f "$R/etc/iscsi/initiatorname.iscsi" ] || echo 'GenerateName=yes' > "$R/etc/iscsi/initiatorname.iscsi"

ln -sf /usr/share/zoneinfo/Etc/UTC "$R/etc/localtime"; echo Etc/UTC > "$R/etc/timezone"
: > "$R/etc/machine-id"   # written per host
printf 'localhost\n' > "$R/etc/hostname"
chroot "$R" apt-get clean   # keeps /var/lib/apt/lists: the apt module can still resolve names offline
