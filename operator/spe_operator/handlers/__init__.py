"""Importing this package registers every Kopf handler on ``spe_operator.registry.REGISTRY``.

Each area adds one import below; the handler modules stay thin (load, build, apply, status).
"""

from ..admission import handlers as admission  # noqa: F401,E402 - the validating webhooks
from ..admission import serving as admission_serving  # noqa: F401,E402 - their certificate and configuration
from . import permits  # noqa: F401,E402 - the DataPermit reconciler
from . import workspaces  # noqa: F401,E402 - the Workspace reconciler
from . import tools  # noqa: F401,E402 - Tool catalogue status
from . import federation  # noqa: F401,E402 - the federation sync, central and node
from . import datasets  # noqa: F401,E402 - the Dataset reconciler
