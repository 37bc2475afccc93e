"""The researcher's front door: JupyterHub configured for the SPE.

- ``catalogue``: which Workspaces a person may use (Active permits that name them), read from
  the Kubernetes API with the hub's own service account;
- ``spawner``: ``WorkspaceSpawner``, thin: it sets ``spec.running`` on the Workspace, writes the
  server's hub credentials into the Workspace's hub Secret and follows the Workspace's status;
  the operator owns every pod;
- ``auth``: GenericOAuthenticator against Keycloak (realm ``spe``, client ``spe-hub``);
- ``pages``: the SPE home page ``/hub/workspaces`` (one named server per usable Workspace) and
  its 403 for people no active permit names;
- ``config``: ``configure(c)``, the whole JupyterHub configuration from ``SPE_HUB_*`` settings.

Imported only by the hub process (it needs jupyterhub and oauthenticator: ``pip install .[hub]``).
"""
