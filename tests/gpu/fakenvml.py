"""The fake NVML library of the gpu tests: built from ``fake_nvml/fake_nvml.c`` with gcc into
``.cache/fake-nvml/<hash of the source>/libnvidia-ml.so.1`` (once), and the scenario files it
reads (see the C file's header for the format)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).resolve().parent / "fake_nvml" / "fake_nvml.c"
LIBRARY = "libnvidia-ml.so.1"


def build_library(cache: Path | None = None) -> Path:
    """The directory holding the built fake ``libnvidia-ml.so.1`` (for LD_LIBRARY_PATH)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = (cache or ROOT / ".cache" / "fake-nvml") / digest
    lib = out / LIBRARY
    if lib.exists():
        return out
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("gcc is needed to build the fake NVML library: run `bash scripts/test-deps.sh`")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{LIBRARY}.{os.getpid()}"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(tmp), str(SOURCE), "-lpthread"],
                   check=True, capture_output=True, text=True)
    tmp.rename(lib)
    return out


@dataclass
class FakeGpu:
    name: str = "NVIDIA L40S"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total: int = 48 * 2**30
    memory_used: int = 0
    util: list[tuple[float, int]] = field(default_factory=lambda: [(0, 0)])  # (offset s, percent)
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, used bytes)
    mig: bool = False
    mig_devices: list[tuple[str, int]] = field(default_factory=list)
    mig_processes: list[tuple[int, int, int]] = field(default_factory=list)  # (instance, pid, used bytes)
    lost: bool = False


@dataclass
class Scenario:
    """A scenario file; ``write()`` again after a change (the library re-reads it)."""

    path: Path
    gpus: list[FakeGpu] = field(default_factory=list)
    init: int = 0
    driver: str = "550.54.15"
    epoch: float | None = None

    def text(self) -> str:
        lines = [f"driver {self.driver}"]
        if self.init:
            lines.append(f"init {self.init}")
        if self.epoch is not None:
            lines.append(f"epoch {self.epoch}")
        for i, g in enumerate(self.gpus):
            lines += [f"gpu {i} name {g.name}", f"gpu {i} uuid {g.uuid}",
                      f"gpu {i} memory {g.memory_total} {g.memory_used}", f"gpu {i} mig {int(g.mig)}"]
            lines += [f"gpu {i} util {t} {p}" for t, p in g.util]
            lines += [f"gpu {i} process {pid} {used}" for pid, used in g.processes]
            lines += [f"gpu {i} mig_device {u} {m}" for u, m in g.mig_devices]
            lines += [f"gpu {i} mig_process {j} {pid} {used}" for j, pid, used in g.mig_processes]
            if g.lost:
                lines.append(f"gpu {i} lost")
        return "\n".join(lines) + "\n"

    def write(self) -> "Scenario":
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(self.text())
        tmp.replace(self.path)  # atomic: the library never reads half a file
        return self


def agent_env(lib_dir: Path, scenario: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "FAKE_NVML_SCENARIO")}
    env.update(LD_LIBRARY_PATH=str(lib_dir), FAKE_NVML_SCENARIO=str(scenario), **extra)
    return env


def fake_proc(root: Path, pid: int, pod_uid: str) -> None:
    """A /proc/<pid>/cgroup as a containerd + systemd-cgroup node writes it for a pod's process."""
    d = root / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    slice_uid = pod_uid.replace("-", "_")
    (d / "cgroup").write_text(
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{slice_uid}.slice/"
        f"cri-containerd-{'ab' * 32}.scope\n")
