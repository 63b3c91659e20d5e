# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pi-hole v5 local DNS files: ``custom.list`` and ``05-pihole-custom-cname.conf``.

Internal to homelab.pi_cluster: names here may change without notice.

v5 has no API for this, so the module runs on the Pi-hole host and edits the files the
web UI edits. Writes are atomic (temporary file in the same directory, then rename) and
keep the file's mode and owner. dnsmasq re-reads hosts files on SIGHUP
(``pihole restartdns reload``), but ``cname=`` lines are configuration and only a full
restart (``pihole restartdns``) applies them.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import List, Tuple

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import PiholeError

CNAME_PREFIX = "cname="


class PiholeFileError(PiholeError):
    """A v5 file could not be read or written."""


def read_lines(path: str) -> List[str]:
    """The file's lines without line endings; a missing file is empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PiholeFileError(f"cannot read {path}: {exc.strerror}") from None


def split_cname_conf(lines: List[str]) -> Tuple[List[str], List[str]]:
    """(other lines, cname entries without the ``cname=`` prefix)."""
    other, entries = [], []
    for line in lines:
        text = line.strip()
        if text.startswith(CNAME_PREFIX):
            entries.append(text[len(CNAME_PREFIX) :])
        else:
            other.append(line)
    return other, entries


def join_cname_conf(other: List[str], entries: List[str]) -> List[str]:
    return other + [CNAME_PREFIX + e for e in entries]


def atomic_write(path: str, lines: List[str]) -> None:
    """Replace ``path`` with ``lines`` via a temporary file + rename; keep mode and owner."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        current = os.stat(path)
        mode, uid, gid = stat.S_IMODE(current.st_mode), current.st_uid, current.st_gid
    except FileNotFoundError:
        mode, uid, gid = 0o644, -1, -1
    content = "".join(line + "\n" for line in lines)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pihole_dns.", dir=directory)
    except OSError as exc:
        raise PiholeFileError(f"cannot create a temporary file in {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid != -1 and (uid, gid) != (os.getuid(), os.getgid()):
            os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise PiholeFileError(f"cannot write {path}: {exc.strerror}") from None
