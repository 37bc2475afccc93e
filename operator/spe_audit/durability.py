"""How durably the audit trail is written (a leaf module: the settings and the log both use it)."""

from __future__ import annotations

import enum


class FsyncPolicy(str, enum.Enum):
    """When the writer forces records to stable storage."""

    ALWAYS = "always"          # fdatasync after every record, before record() returns (default)
    CHECKPOINT = "checkpoint"  # at each checkpoint, rotation and close; a crash may lose the rest
    NEVER = "never"            # leave it to the kernel (tests, tmpfs)
