"""Shared bits of the egress tests: sample files and running spe-export in-process."""

from __future__ import annotations

import io
import zipfile
from contextlib import redirect_stderr, redirect_stdout

from spe_workspace import export_cli

from .conftest import NAMESPACE, WORKSPACE

SMALL_CELLS_CSV = b"site,patients,mean_age\nA,3,61.2\nB,120,58.9\nC,45,60.1\n"
SAFE_CSV = b"site,patients\nA,130\nB,120\n"
NOTES_TXT = b"Model AUC 0.91 on the held-out set.\n"


def run_cli(gw, token: str, *argv: str, workspace: str = WORKSPACE, namespace: str = NAMESPACE
            ) -> tuple[int, str, str]:
    env = {"SPE_EGRESS_URL": gw.url, "JUPYTERHUB_API_TOKEN": token, "SPE_WORKSPACE": workspace,
           "SPE_NAMESPACE": namespace}
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = export_cli.main(list(argv), env=env)
    return code, out.getvalue(), err.getvalue()


def approve_all(n_files: int, comment: str = "") -> dict:
    return {i: {"vote": "approve", "comment": comment, "visibility": "private"} for i in range(n_files)}


def zip_members(data: bytes) -> dict[str, bytes]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return {n: z.read(n) for n in z.namelist()}


def png_with_text(key: bytes = b"Author", value: bytes = b"Dr Who, St Elsewhere Hospital") -> bytes:
    """A 2x2 grey PNG carrying a tEXt metadata chunk (which the image check flags)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x80\x80" for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", key + b"\x00" + value)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
