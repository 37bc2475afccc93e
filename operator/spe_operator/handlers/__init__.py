"""Importing this package registers every Kopf handler on ``spe_operator.registry.REGISTRY``.

Each area adds one import below; the handler modules stay thin (load, build, apply, status).
"""
