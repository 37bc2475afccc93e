"""The one module that talks to NVML (nvidia-ml-py's ``pynvml``): one inventory per call.

Errors that concern the whole node (no library, no driver) raise ``NvmlUnavailable``; a GPU
that fell off the bus (``NVML_ERROR_GPU_IS_LOST``) is reported as a lost GPU in the inventory,
and the others are still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pynvml

from spe_api import Reason

MIG_ENABLED = 1


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    memory_used: int | None  # bytes; None where the driver does not say


@dataclass(frozen=True)
class MigInstance:
    uuid: str
    memory_total: int
    processes: tuple["GpuProcess", ...] = ()


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str | None = None
    model: str | None = None
    memory_total: int = 0
    memory_used: int = 0
    utilization: int | None = None  # percent; None in MIG mode (the driver does not measure it)
    mig_enabled: bool = False
    mig: tuple[MigInstance, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    lost: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Inventory:
    driver: str
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)

    @property
    def lost(self) -> list[Gpu]:
        return [g for g in self.gpus if g.lost]


class NvmlUnavailable(Exception):
    """NVML cannot be used on this node at all; ``reason`` is a Reason constant."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def unavailable_from(err: pynvml.NVMLError) -> NvmlUnavailable:
    code = err.value
    if code == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        return NvmlUnavailable(Reason.NVML_UNAVAILABLE, (
            "libnvidia-ml.so.1 was not found: the NVIDIA driver is not installed on this node, or the agent's pod "
            "does not see it (install the driver and the NVIDIA container toolkit, or run the agent with the "
            "nvidia runtime class)."))
    if code == pynvml.NVML_ERROR_DRIVER_NOT_LOADED:
        return NvmlUnavailable(Reason.NVML_UNAVAILABLE, (
            "NVML reports that the NVIDIA driver is not loaded on this node: load the kernel module "
            "(nvidia-smi shows the same) or remove the node from the GPU pool."))
    if code == pynvml.NVML_ERROR_NO_PERMISSION:
        return NvmlUnavailable(Reason.NVML_UNAVAILABLE, "NVML refused access (no permission to /dev/nvidia*).")
    return NvmlUnavailable(Reason.NVML_UNAVAILABLE, f"NVML failed: {err} (error {code}).")


def _processes(handle) -> tuple[GpuProcess, ...]:
    """The compute processes on a GPU or a MIG instance."""
    try:
        found = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except pynvml.NVMLError as err:
        if err.value == pynvml.NVML_ERROR_NOT_SUPPORTED:
            return ()
        raise
    return tuple(GpuProcess(int(p.pid), None if p.usedGpuMemory is None else int(p.usedGpuMemory)) for p in found)


class Nvml:
    """An initialised NVML session; ``close()`` shuts it down."""

    def __init__(self) -> None:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise unavailable_from(err) from err
        self.open = True

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass

    def inventory(self) -> Inventory:
        try:
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as err:
            raise unavailable_from(err) from err
        return Inventory(driver=driver, gpus=tuple(self._gpu(i) for i in range(count)))

    def _gpu(self, index: int) -> Gpu:
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            model = _text(pynvml.nvmlDeviceGetName(handle))
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            mig_enabled, mig = self._mig(handle)
            utilization = None
            if not mig_enabled:
                utilization = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            processes = _processes(handle)
        except pynvml.NVMLError as err:
            if err.value == pynvml.NVML_ERROR_GPU_IS_LOST:
                return Gpu(index=index, lost=True, error=(
                    f"GPU {index} is lost (NVML_ERROR_GPU_IS_LOST): it fell off the bus or stopped answering; "
                    "drain the node and reset or replace the GPU."))
            return Gpu(index=index, error=f"GPU {index}: NVML error {err.value}: {err}")
        return Gpu(index=index, uuid=uuid, model=model, memory_total=int(memory.total), memory_used=int(memory.used),
                   utilization=utilization, mig_enabled=mig_enabled, mig=mig, processes=processes)

    @staticmethod
    def _mig(handle) -> tuple[bool, tuple[MigInstance, ...]]:
        try:
            current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
        except pynvml.NVMLError as err:
            if err.value in (pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND):
                return False, ()
            raise
        if current != MIG_ENABLED:
            return False, ()
        out = []
        for i in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
            except pynvml.NVMLError as err:
                if err.value in (pynvml.NVML_ERROR_NOT_FOUND, pynvml.NVML_ERROR_INVALID_ARGUMENT):
                    continue
                raise
            out.append(MigInstance(_text(pynvml.nvmlDeviceGetUUID(mig)), int(pynvml.nvmlDeviceGetMemoryInfo(mig).total),
                                   _processes(mig)))
        return True, tuple(out)
