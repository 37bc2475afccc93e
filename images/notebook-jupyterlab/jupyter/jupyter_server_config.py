# The notebook server's configuration in the SPE: the image installs this directory as
# /opt/spe/etc/jupyter (its JUPYTER_CONFIG_DIR, read-only), read by jupyterhub-singleuser and
# by jupyter lab alike. tests/hub/test_notebook_downloads.py starts the server with this very
# directory and tries every route below.
c = get_config()  # noqa: F821

# Downloads are closed server-side: the handlers of spe_workspace.closed_downloads come before
# Jupyter Server's own (an "extra service"), so /files/, /view/ and /nbconvert/ answer 403 with
# a message naming spe-export, and /api/nbconvert lists no export formats.
c.ServerApp.extra_services = ["spe_workspace.closed_downloads"]
# The contents manager mounts its own /files/ handler after the services: the same refusal.
c.ContentsManager.files_handler_class = "spe_workspace.closed_downloads.ClosedRouteHandler"
c.ContentsManager.files_handler_params = {}

# No configuration from the researcher's home (~/.jupyter, ~/.local): set in the image's
# environment too (JUPYTERHUB_DISABLE_USER_CONFIG, PYTHONNOUSERSITE, JUPYTER_CONFIG_DIR), so a
# config file written in the home cannot reopen what is closed here.
c.ServerApp.disable_check_xsrf = False

# A workspace has no way out to the internet: no extension manager reaching a package index, no
# news feed, no update check (phone-home defaults off, as for the suite's own tools).
c.LabApp.extension_manager = "readonly"
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
