# The SPE hub: everything comes from spe_workspace.hub.config, set by SPE_HUB_* variables.
from spe_workspace.hub.config import configure

configure(get_config())  # noqa: F821 - provided by JupyterHub when it loads this file
