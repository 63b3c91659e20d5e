"""Build a K3s-style airgap directory around the stand-in: what the roles' airgap install path reads.

    python -m lab.k3s_standin.build OUT_DIR [--version v1.31.4+k3s1]

writes, as a K3s release does (names for this machine's architecture)::

    OUT_DIR/k3s                                  (k3s-arm64 / k3s-armhf on those architectures)
    OUT_DIR/k3s-airgap-images-amd64.tar.gz       (a valid, empty image archive: a placeholder)
    OUT_DIR/sha256sum-amd64.txt                  ("<sha256>  <file>" lines, as sha256sum writes them)

The ``k3s`` file is one self-contained executable (a Python zip application): the stand-in, the lab's
test API server and the pure-Python and compiled libraries they import (PyYAML, cryptography, cffi),
because the lab hosts have nothing but python3. Like K3s it unpacks itself once, on first start, into
``/var/lib/rancher/k3s/data/<id>/``. The build is deterministic (same inputs, same bytes, same sha256),
so rebuilding never looks like an upgrade to the roles.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import platform
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_VERSION = "v1.31.4+k3s1"
# K3s release asset names per architecture: binary, checksum-file suffix
ARCH_ASSETS = {"x86_64": ("amd64", "k3s"), "aarch64": ("arm64", "k3s-arm64"), "armv7l": ("arm", "k3s-armhf")}
# Distributions the stand-in imports (top-level names as they sit in site-packages).
DEPENDENCIES = ("yaml", "_yaml", "cryptography", "cffi", "_cffi_backend")
# Distributions whose version lab.kubeapi asks importlib.metadata for (their code is not needed: the
# kubeapi's model cache, built here, answers instead of the kubernetes client's models).
DIST_METADATA = ("kubernetes",)

BOOTSTRAP = '''\
"""k3s (lab stand-in): unpack once into <data>/<id>/ as K3s does, then run from there."""
import json, os, shutil, sys, zipfile

ARCHIVE = os.path.dirname(os.path.abspath(__file__))


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("--version", "-v", "version"):
        # pure Python, so it runs from the archive itself without unpacking
        sys.path[:0] = [os.path.join(ARCHIVE, "tests"), os.path.join(ARCHIVE, "site-packages")]
        from lab.k3s_standin.k3s import main as k3s_main
        return k3s_main(args)
    with zipfile.ZipFile(ARCHIVE) as archive:
        info = json.loads(archive.read("tests/lab/k3s_standin/_build.json"))
        target = os.path.join(os.environ.get("K3S_STANDIN_DATA", "/var/lib/rancher/k3s/data"), info["payload"])
        if not os.path.exists(os.path.join(target, ".complete")):
            tmp = "%s.tmp-%d" % (target, os.getpid())
            archive.extractall(tmp)
            open(os.path.join(tmp, ".complete"), "w").close()
            try:
                os.rename(tmp, target)
            except OSError:  # another process unpacked it first
                shutil.rmtree(tmp, ignore_errors=True)
    sys.path[:] = [os.path.join(target, "tests"), os.path.join(target, "site-packages")] + [
        p for p in sys.path if os.path.abspath(p) != ARCHIVE]
    from lab.k3s_standin.k3s import main as k3s_main
    return k3s_main(args)


sys.exit(main())
'''


def _site_packages_files() -> list[tuple[str, Path]]:
    files = [(f"{path.parent.name}/METADATA", path) for path in map(_dist_metadata, DIST_METADATA)]
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"build: {name} is not importable here; run from the project venv")
        origin = Path(spec.origin)
        if spec.submodule_search_locations:  # a package: the whole directory
            root = origin.parent
            files += [
                (f"{name}/{p.relative_to(root)}", p)
                for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            ]
        else:  # a single module (e.g. the compiled _cffi_backend)
            files.append((origin.name, origin))
    return files


def _dist_metadata(dist: str) -> Path:
    import importlib.metadata  # noqa: PLC0415

    path = importlib.metadata.distribution(dist).locate_file(f"{dist}-{importlib.metadata.version(dist)}.dist-info")
    return Path(str(path)) / "METADATA"  # e.g. kubernetes-37.0.2.dist-info/METADATA


def _payload() -> list[tuple[str, bytes]]:
    """Files laid out as in the repository (``tests/lab/...``, ``.cache/kubeapi/...``), which is where
    lab.kubeapi looks for its caches, plus ``site-packages/`` with the libraries."""
    from lab.kubeapi import typed  # noqa: PLC0415 - after sys.path is set
    from lab.kubeapi.resources import default_crd_files  # noqa: PLC0415

    typed.schemas()  # makes sure the model cache exists
    entries: list[tuple[str, Path]] = []
    for package in ("kubeapi", "k3s_standin"):
        entries += [(f"tests/lab/{package}/{p.name}", p) for p in sorted((LAB / package).glob("*.py"))]
    entries += [(f"tests/lab/k3s_standin/crds/{p.parent.name}-{p.name}", p) for p in default_crd_files()]
    entries += [(f".cache/kubeapi/{p.name}", p) for p in sorted(typed.CACHE_DIR.glob("builtin-models-*.json"))]
    entries += [(f"site-packages/{name}", path) for name, path in _site_packages_files()]
    return sorted((name, path.read_bytes()) for name, path in entries)


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    archive.writestr(info, data)


def build_binary(version: str) -> bytes:
    payload = _payload()
    digest = hashlib.sha256()
    for name, data in payload:
        digest.update(name.encode() + b"\0" + data)
    digest.update(version.encode())
    payload_id = digest.hexdigest()[:16]
    build_info = json.dumps({"version": version, "commit": payload_id[:8], "payload": payload_id}).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _zip_entry(archive, "__main__.py", BOOTSTRAP.encode())
        _zip_entry(archive, "tests/lab/__init__.py", b"")  # zipimport needs a regular package
        _zip_entry(archive, "tests/lab/k3s_standin/_build.json", build_info)
        for name, data in payload:
            _zip_entry(archive, name, data)
    return b"#!/usr/bin/env python3\n" + buffer.getvalue()


def images_placeholder() -> bytes:
    """An image archive K3s would import without error: a tar with an empty manifest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("manifest.json", b"[]\n"), ("repositories", b"{}\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    import gzip  # noqa: PLC0415

    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build(out_dir: Path, version: str = DEFAULT_VERSION) -> dict[str, Path]:
    machine = platform.machine()
    if machine not in ARCH_ASSETS:
        raise SystemExit(f"build: no K3s asset names for architecture {machine}")
    arch, binary_name = ARCH_ASSETS[machine]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {binary_name: build_binary(version), f"k3s-airgap-images-{arch}.tar.gz": images_placeholder()}
    lines = []
    for name, data in files.items():
        path = out_dir / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        path.chmod(0o755 if name == binary_name else 0o644)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    checksums = out_dir / f"sha256sum-{arch}.txt"
    checksums.write_text("".join(sorted(lines, key=lambda line: line.split()[1])), encoding="utf-8")
    return {
        "binary": out_dir / binary_name,
        "checksums": checksums,
        "images": out_dir / f"k3s-airgap-images-{arch}.tar.gz",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.k3s_standin.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--version", default=DEFAULT_VERSION, help="the K3s version the stand-in reports")
    args = parser.parse_args(argv)
    for kind, path in build(args.out_dir, args.version).items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
