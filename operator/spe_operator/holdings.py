"""What a permit's workspaces hold against its ceilings: compute (CPU, memory, GPUs per model)
while they run, storage (home + outputs) always; a workspace being deleted holds nothing.

One computation for the two places that need it: the webhook's ceiling check (what the *other*
workspaces hold) and the permit's ``status.allocated``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from spe_api import Allocation, GpuAllocation, Workspace, format_quantity, parse_quantity

VOLUMES_PER_WORKSPACE = 2  # home and outputs, each of spec.storage.size


@dataclass
class Holdings:
    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)
    storage: Decimal = Decimal(0)
    gpus: dict[str, int] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    count: int = 0

    @classmethod
    def of(cls, workspaces: Iterable[Workspace], permit: str | None = None, *,
           exclude: str | None = None) -> Holdings:
        """What ``workspaces`` hold (only those of ``permit`` when given, never ``exclude``)."""
        held = cls()
        for ws in workspaces:
            if (permit is not None and ws.spec.permit != permit) or ws.name == exclude \
                    or ws.metadata.deletion_timestamp is not None:
                continue
            held.count += 1
            held.storage += VOLUMES_PER_WORKSPACE * parse_quantity(ws.spec.storage.size)
            if not ws.spec.running:
                continue
            held.running.append(ws.name)
            held.cpu += parse_quantity(ws.spec.resources.cpu)
            held.memory += parse_quantity(ws.spec.resources.memory)
            if ws.spec.resources.gpus:
                model = ws.spec.resources.gpus.model
                held.gpus[model] = held.gpus.get(model, 0) + ws.spec.resources.gpus.count
        return held

    def allocation(self) -> Allocation:
        """As the permit's ``status.allocated`` shows it."""
        return Allocation(cpu=format_quantity(self.cpu), memory=format_quantity(self.memory, "bytes"),
                          storage=format_quantity(self.storage, "bytes"),
                          gpus=[GpuAllocation(model=m, count=n) for m, n in sorted(self.gpus.items())])
