"""Images of the real node: the pause image (built here) and the project's images (built by
images/build-local.sh), imported into the node's containerd. Nothing is ever pulled.

The pause image is one static binary; it is written as a docker-archive (manifest.json, config,
one layer) by ``pause_archive`` and cached under the home, keyed by the source's hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .nodeconf import PAUSE_IMAGE, NodeLayout
from .settings import Settings

PAUSE_SOURCE = Path(__file__).resolve().parent / "pause" / "pause.c"


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, ref: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str]) -> None:
    """A one-layer docker-archive holding ``files`` (name -> (content, mode)) as ``ref``."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        for name, (data, mode) in sorted(files.items()):
            _tar_add(layer, name, data, mode)
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint, "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "spe-dev (gcc -static pause.c)"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_add(tar, "layer.tar", layer_bytes)
        _tar_add(tar, config_name, config)
        _tar_add(tar, "manifest.json", manifest)


def pause_archive(s: Settings) -> Path:
    """Build (once per source) the pause image's docker-archive; return its path."""
    source = PAUSE_SOURCE.read_bytes()
    key = hashlib.sha256(source).hexdigest()[:12]
    out = s.node_dir / "images" / f"spe-pause-{key}.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        proc = subprocess.run(["gcc", "-Os", "-static", "-o", str(binary), str(PAUSE_SOURCE)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"gcc -static pause.c failed (install gcc and libc6-dev): {proc.stderr.strip()}")
        subprocess.run(["strip", str(binary)], check=False)
        tmp_out = out.with_suffix(".tmp")
        docker_archive(tmp_out, PAUSE_IMAGE, {"pause": (binary.read_bytes(), 0o755)}, ["/pause"])
        tmp_out.replace(out)
    return out


def ctr(lay: NodeLayout, *args: str, timeout: float = 600, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(["ctr", "--address", str(lay.containerd_sock), "--namespace", "k8s.io", *args],
                          stdin=stdin, capture_output=True, text=True, timeout=timeout)


def image_digests(lay: NodeLayout) -> dict[str, str]:
    """name -> manifest digest of every image in the node's containerd (k8s.io namespace)."""
    proc = ctr(lay, "images", "list")
    if proc.returncode != 0:
        raise RuntimeError(f"ctr images list: {proc.stderr.strip()}")
    out = {}
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            out[parts[0]] = parts[2]
    return out


def import_archive(lay: NodeLayout, archive: Path, timeout: float = 600) -> None:
    """Import a docker-archive into the node's containerd; one compressed by images/build-local.sh
    (``.zst``) is streamed through ``zstd -dc``, never written out uncompressed."""
    if archive.suffix != ".zst":  # the pause image, written here uncompressed
        proc = ctr(lay, "images", "import", str(archive), timeout=timeout)
    else:
        with subprocess.Popen(["zstd", "-dc", str(archive)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as unzstd:
            proc = ctr(lay, "images", "import", "-", stdin=unzstd.stdout, timeout=timeout)
            unzstd.stdout.close()
            unzstd_err = unzstd.stderr.read().decode(errors="replace").strip()
            unzstd.wait(timeout=30)
        if unzstd.returncode != 0:
            raise RuntimeError(f"zstd -dc {archive} (rebuild it: bash images/build-local.sh): {unzstd_err}")
    if proc.returncode != 0:
        raise RuntimeError(f"ctr images import {archive}: {proc.stderr.strip() or proc.stdout.strip()}")


def local_image_archives(images_dir: Path | None) -> dict[str, tuple[str, Path]]:
    """The project images built by images/build-local.sh: name -> (ref, docker-archive, plain
    or zstd-compressed), from its index."""
    if images_dir is None:
        return {}
    index = images_dir / "index.json"
    try:
        data = json.loads(index.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    out = {}
    for name, entry in data.get("images", {}).items():
        archive = Path(entry["archive"])
        if archive.exists():
            out[name] = (entry["ref"], archive)
    return out


def tag(lay: NodeLayout, source: str, target: str) -> None:
    proc = ctr(lay, "images", "tag", "--force", source, target)
    if proc.returncode != 0:
        raise RuntimeError(f"ctr images tag {source} {target}: {proc.stderr.strip()}")


def remove_images(lay: NodeLayout, refs: list[str]) -> None:
    if refs:
        ctr(lay, "images", "rm", *refs)
