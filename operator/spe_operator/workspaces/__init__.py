"""Workspace reconciliation: pure builders of a Workspace's children and status, plus the
controller that applies them.

Pure modules (no I/O, no clock, no globals): ``names``, ``volumes``, ``datasets``,
``statefulset``, ``service``, ``checks``, ``status``, ``idle``, ``desired``.
I/O lives in ``controller`` (the work queue and the one reconcile path), ``world`` (the
in-memory view fed by watch events) and ``events``.
"""
