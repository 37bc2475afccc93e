"""The validating admission webhook for rules that need other objects.

- :mod:`.rules`: the decisions, pure functions (also used by the reconcilers).
- :mod:`.messages`: the refusal messages.
- :mod:`.configuration`: the ValidatingWebhookConfiguration builder (and why fail-closed).
- :mod:`.tls`: the webhook's private CA and serving certificate.
- :mod:`.handlers`: the Kopf handlers (imported by ``spe_operator.handlers``).
"""

from __future__ import annotations

from typing import Any

from .rules import (Denial, Holdings, ceiling_denial, check_data_permit, check_output_review, check_workspace,
                    membership_denial, permit_active_denial, tool_denial, workspace_denials)


def configure_admission(settings: Any, spe: Any) -> None:
    """Called by the runtime's start-up: the webhook configuration is not Kopf-managed.

    The server itself (with its certificate) is set by ``handlers.start_admission``.
    """
    settings.admission.managed = None


__all__ = [
    "Denial", "Holdings", "ceiling_denial", "check_data_permit", "check_output_review", "check_workspace",
    "configure_admission", "membership_denial", "permit_active_denial", "tool_denial", "workspace_denials",
]
