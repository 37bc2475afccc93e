"""The notebook server's download routes, closed: loaded by the image's
``jupyter_server_config.py`` as a Jupyter Server *extra service*, whose handlers come before
every default one, so they answer first.

Closed (403, whatever the method, before authentication is even looked at):

- ``/files/…`` -- the FilesHandler (JupyterLab's "Download" in the file browser and the
  document menu, ``?download=1``);
- ``/view/…`` -- the ViewHandler (a page embedding ``/files/``);
- ``/nbconvert/…`` -- a notebook converted to HTML, PDF, script… (GET of a file, POST of a
  notebook: "Save and Export Notebook As");
- ``/api/nbconvert`` answers an empty list of formats, so JupyterLab offers no export.

Each refusal is logged with the user's path. What stays open is the contents API
(``/api/contents``): JupyterLab's editor reads and saves files through it -- an editor must
read what it shows. The only way for a file to leave the workspace as a file is
``spe-export``, through review.

Import-light on purpose: only Jupyter Server and Tornado, so the image's server loads it
without the rest of the SPE.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web

REFUSAL = ("downloads are closed in this Secure Processing Environment: files leave a workspace only "
           "through review; run `spe-export request <files> --justification \"…\"` in a terminal or a "
           "notebook cell")

# Patterns relative to the server's base URL (Jupyter Server prepends it). Each is a superset
# of the default route it shadows: /files/(.*), /view<path>, /nbconvert/<format>[<path>].
CLOSED_ROUTES = (r"/files(?:/.*)?", r"/view(?:/.*)?", r"/nbconvert(?:/.*)?")


class ClosedRouteHandler(JupyterHandler):
    """403 for every method, with a message that says what to do instead."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, *args, **kwargs) -> None:  # also used as ContentsManager.files_handler_class
        super().initialize()

    async def prepare(self) -> None:
        # before JupyterHandler.prepare: no authentication, no XSRF check, no redirect to a login
        self.log.warning("refused %s %s: downloads are closed (spe-export is the way out)",
                         self.request.method, self.request.path)
        self.set_status(403)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"error": "downloads_closed", "message": REFUSAL}))


class NoExportFormatsHandler(APIHandler):
    """``GET /api/nbconvert``: no export formats (the notebook's "Export" menu stays empty)."""

    auth_resource = "nbconvert"

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.finish(json.dumps({}))


default_handlers = [
    *((route, ClosedRouteHandler) for route in CLOSED_ROUTES),
    (r"/api/nbconvert/?", NoExportFormatsHandler),
]
