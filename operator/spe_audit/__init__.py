"""The SPE audit trail: a tamper-evident, hash-chained record of every access-relevant act.

At start-up, once::

    import spe_audit
    spe_audit.configure(spe_audit.AuditSettings.from_env())      # or AuditSettings(path=...)

Then, wherever an act happens::

    spe_audit.record("user:alice", spe_audit.Act.WORKSPACE_STARTED,
                     target="Workspace/spe-p1/ws-alice", permit="p1")

On shutdown ``spe_audit.shutdown()`` writes a final signed checkpoint. The acts to record, the
record format and the guarantees are in this package's README.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any, Mapping

from .acts import Act, Outcome
from .checkpoint import Checkpoint, generate_keypair, load_private_key, load_public_key
from .durability import FsyncPolicy
from .log import AuditError, AuditLog, CheckpointPublisher, RecordExporter
from .record import Record, canonical
from .verify import Problem, Tamper, VerifyResult, log_groups, verify

__all__ = [
    "Act", "AuditError", "AuditLog", "AuditSettings", "Checkpoint", "CheckpointPublisher",
    "FsyncPolicy", "Outcome", "Problem", "Record", "RecordExporter", "Tamper", "TelemetrySettings",
    "VerifyResult", "canonical", "configure", "default", "generate_keypair", "load_private_key",
    "load_public_key", "log_groups", "record", "shutdown", "verify",
]

if TYPE_CHECKING:
    from .settings import AuditSettings, TelemetrySettings


def __getattr__(name: str):
    # the settings models pull in pydantic (a third of a second): load them only when used,
    # so that ``spe-audit verify`` and components that never configure stay quick to start
    if name in ("AuditSettings", "TelemetrySettings"):
        from . import settings
        return getattr(settings, name)
    raise AttributeError(f"module 'spe_audit' has no attribute {name!r}")


_default: AuditLog | None = None
_owned_telemetry: Any = None  # the Telemetry configure() built, shut down with the log
_default_lock = threading.Lock()


def configure(settings: "AuditSettings", *, publisher: CheckpointPublisher | None = None,
              exporter: Any = None) -> AuditLog:
    """Create the process-wide audit log from ``settings`` (once; ``shutdown()`` first to redo).

    Without an explicit ``exporter``, records go to OpenTelemetry when
    ``settings.telemetry.otlp_endpoint`` is set (and that telemetry becomes
    ``spe_audit.telemetry.current()``), and nowhere otherwise.
    """
    global _default, _owned_telemetry
    with _default_lock:
        if _default is not None:
            raise RuntimeError(f"the audit trail is already configured ({_default.path}); "
                               "call spe_audit.shutdown() first")
        if exporter is None:
            from . import telemetry
            tel = telemetry.Telemetry.from_settings(settings.telemetry)
            telemetry.set_current(tel)
            exporter = tel.audit_exporter()
            _owned_telemetry = tel
        _default = AuditLog(settings.path, signing_key=settings.signing_key_file,
                            checkpoint_every=settings.checkpoint_every, exporter=exporter,
                            publisher=publisher, fsync=settings.fsync,
                            rotate_bytes=settings.rotate_bytes, actor=settings.actor)
        atexit.register(_close_at_exit, _default)
        return _default


def default() -> AuditLog:
    """The configured process-wide log; raises if ``configure`` was not called (an SPE component
    must not run without its audit trail)."""
    log = _default
    if log is None:
        raise AuditError("the audit trail is not configured: call spe_audit.configure(settings) at start-up")
    return log


def record(actor: str, action: Act | str, target: str | None = None, permit: str | None = None,
           dataset: str | None = None, outcome: Outcome | str = Outcome.SUCCESS,
           details: Mapping[str, Any] | None = None) -> Record:
    """Append one record to the process-wide log (see :meth:`AuditLog.record`)."""
    return default().record(actor, action, target=target, permit=permit, dataset=dataset,
                            outcome=outcome, details=details)


def shutdown() -> None:
    """Close the process-wide log (final checkpoint, flush) and forget it."""
    global _default, _owned_telemetry
    with _default_lock:
        log, _default = _default, None
        tel, _owned_telemetry = _owned_telemetry, None
    if log is not None:
        log.close()
        atexit.unregister(_close_at_exit)
    if tel is not None:
        from . import telemetry
        tel.shutdown()
        telemetry.set_current(None)


def _close_at_exit(log: AuditLog) -> None:
    try:
        log.close()
    except Exception:  # nothing useful to do at interpreter exit
        pass
