"""The SPE home page, ``/hub/workspaces`` (the hub's default URL; ``/hub/home`` leads there).

It lists exactly the Workspaces the person may use (``catalogue.workspaces_for``: Active permits
that name them), read from the API on every visit, and keeps the person's named servers equal
to that list: one per Workspace, named ``<namespace>.<workspace>``, created here (so the names
need not pass JupyterHub 6's rule for names users type) and removed, when stopped, once the
Workspace is no longer theirs. A person no active permit names gets a 403 page that says so.
"""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from . import catalogue
from .kube import hub_kube

NOT_A_MEMBER = ("{user} is not a member of any active data permit, so there is no workspace to open. "
                "A data access body adds researchers to a permit; ask the permit's owner, "
                "or your data access body, to add you.")


def sync_named_servers(user, entries: list[catalogue.WorkspaceEntry], db) -> None:
    """Make ``user``'s named servers exactly one per entry (stopped strays are removed)."""
    wanted = {e.server_name: e for e in entries}
    for name, entry in wanted.items():
        if name not in user.orm_spawners:
            user._new_orm_spawner(name, entry.display_name)
    for name in [n for n in user.orm_spawners if n and n not in wanted]:
        spawner = user.spawners.get(name)
        if spawner is not None and (spawner.active or spawner.ready):
            continue  # the spawner's poll stops it; removed on a later visit
        user.spawners.pop(name, None)
        db.delete(user.orm_spawners[name])
        db.commit()


class WorkspacesHandler(BaseHandler):
    def initialize(self, kubeconfig: str | None = None) -> None:
        super().initialize()
        self.kubeconfig = kubeconfig

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        who = catalogue.identities(user.name, await user.get_auth_state())
        entries = await catalogue.workspaces_for(hub_kube(self.kubeconfig), who)
        if not entries:
            raise web.HTTPError(403, NOT_A_MEMBER.format(user=user.name))
        sync_named_servers(user, entries, self.db)
        rows = []
        for e in entries:
            spawner = user.spawners.get(e.server_name)
            rows.append({"entry": e, "ready": bool(spawner and spawner.ready),
                         "pending": bool(spawner and spawner.pending),
                         "spawn_url": url_path_join(self.hub.base_url, "spawn", user.escaped_name, e.server_name),
                         "open_url": user.server_url(e.server_name)})
        self.finish(await self.render_template("spe-workspaces.html", user=user, rows=rows))
