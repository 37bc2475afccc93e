"""The explicit Kopf registry every handler registers on, so tests can embed the operator."""

import kopf

REGISTRY = kopf.OperatorRegistry()
