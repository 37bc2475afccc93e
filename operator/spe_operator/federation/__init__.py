"""Federation on Open Cluster Management (docs/federation.md): permits down, metadata up.

The transport is OCM, not code of ours. At central, the operator turns each DataPermit that
names datasets held by a tier-3 node into a ManifestWork for that node (``works``); the node's
klusterlet agent dials central, pulls it and applies the permit, which the same operator there
reconciles as a local permit. Back up, through the ManifestWorks' status feedback, come only the
node's datasets' descriptive metadata and its audit checkpoint (``catalogue``); central keeps
them in a read-only catalogue ConfigMap per node. A node that hears no heartbeat from central
for longer than its lease suspends its mirrored permits (``lease``).

Pure builders here; the Kopf wiring is ``handlers/federation.py``.
"""

from __future__ import annotations

# Labels and names shared by central and node.
PREFIX = "federation.spe.ehds.io"
# On a ManagedCluster (central; set by the join step or an administrator): the node's tier, and
# one label per dataset the node holds: dataset.federation.spe.ehds.io/<dataset>=held.
LABEL_TIER = f"{PREFIX}/tier"
DATASET_LABEL_PREFIX = f"dataset.{PREFIX}/"
HELD = "held"
# On objects a node received from central (the mirrored DataPermit, Tools).
LABEL_MIRRORED = f"{PREFIX}/mirrored"
# On central's ManifestWorks and catalogue ConfigMaps: which node.
LABEL_NODE = f"{PREFIX}/node"
COMPONENT = "federation"
# Only nodes of this tier receive permits (and run workspaces); tier-2 nodes take part in
# discovery only (heartbeat, catalogue).
PERMIT_TIER = 3

# Node-side ConfigMaps in the operator namespace.
HEARTBEAT_CONFIGMAP = "spe-federation-heartbeat"   # written by the work agent (from central)
CATALOGUE_CONFIGMAP = "spe-federation-catalogue"   # written by the node's operator, read by OCM
CHECKPOINT_CONFIGMAP = "spe-audit-checkpoint"      # the audit trail's published checkpoint


def dataset_label(dataset: str) -> str:
    return f"{DATASET_LABEL_PREFIX}{dataset}"
