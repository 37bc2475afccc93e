"""Importing this package registers every Kopf handler on ``spe_operator.registry.REGISTRY``.

Each area adds one import below; the handler modules stay thin (load, build, apply, status).
"""

from ..admission import handlers as admission  # noqa: F401,E402 - validating webhook (issue 3)
from . import permits  # noqa: F401,E402 - DataPermit reconciler (issue 4)
from . import workspaces  # noqa: F401,E402 - Workspace reconciler (issue 4)
from . import tools  # noqa: F401,E402 - Tool catalogue status
from . import datasets  # noqa: F401,E402 - Dataset reconciler (issue 12)
