"""An encrypted directory for the local storage class: an ext4 file system with the ``encrypt``
feature on a loop device, and an fscrypt v2 policy (AES-256-XTS contents, AES-256-CTS names) on
its ``volumes/`` directory, whose key is added to the file system's keyring. Every volume the
local-path provisioner makes below it inherits the policy: the kernel encrypts each file's
contents and name on disk, and anyone on the node with the key added reads plaintext.

One key per storage class (the fixture's), not per dataset: the per-dataset key of a Dataset is
for a CSI driver (the claim's annotations, ``spe_operator.datasets.names``), which local-path is
not. The ioctls are the kernel's (linux/fscrypt.h); no fscrypt tool is needed.
"""

from __future__ import annotations

import fcntl
import os
import struct
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER = 2
FSCRYPT_POLICY_V2 = 2
MODE_AES_256_XTS, MODE_AES_256_CTS = 1, 4
KEY_SPEC = "II32s"  # type, reserved, identifier (in a 32-byte union)


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("f") << 8) | nr


FS_IOC_ADD_ENCRYPTION_KEY = _ioc(3, 23, 80)    # _IOWR('f', 23, struct fscrypt_add_key_arg)
FS_IOC_SET_ENCRYPTION_POLICY = _ioc(2, 19, 12)  # _IOR('f', 19, struct fscrypt_policy_v1)


def add_key(mountpoint: Path, key: bytes) -> bytes:
    """Add ``key`` to the file system's keyring; returns its identifier (16 bytes)."""
    arg = bytearray(struct.pack(KEY_SPEC, FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER, 0, b"\0" * 32)
                    + struct.pack("II32s", len(key), 0, b"\0" * 32) + key)
    fd = os.open(mountpoint, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FS_IOC_ADD_ENCRYPTION_KEY, arg)
    finally:
        os.close(fd)
    return bytes(arg[8:24])


def set_policy(directory: Path, identifier: bytes) -> None:
    policy = struct.pack("BBBBB3s16s", FSCRYPT_POLICY_V2, MODE_AES_256_XTS, MODE_AES_256_CTS, 0, 0,
                         b"\0" * 3, identifier)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FS_IOC_SET_ENCRYPTION_POLICY, policy)
    finally:
        os.close(fd)


@contextmanager
def encrypted_directory(work: Path, size: str = "1G") -> Iterator[tuple[Path, Path]]:
    """Yields (the encrypted ``volumes/`` directory, the file system's backing image)."""
    work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fscrypt-", dir=work))
    image, mountpoint = work / "encrypted.ext4", work / "encrypted"
    mountpoint.mkdir()
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "encrypt", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        identifier = add_key(mountpoint, os.urandom(64))
        volumes = mountpoint / "volumes"
        volumes.mkdir()
        set_policy(volumes, identifier)
        volumes.chmod(0o755)
        yield volumes, image
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        image.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def on_disk(image: Path, needle: bytes, chunk: int = 16 << 20) -> bool:
    """Whether ``needle`` occurs in the raw bytes of the backing image."""
    os.sync()
    overlap = len(needle) - 1
    tail = b""
    with image.open("rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                return False
            if needle in tail + block:
                return True
            tail = block[-overlap:]
