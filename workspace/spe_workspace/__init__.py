"""JupyterHub integration of the SPE: the hub's spawner and configuration, and the
notebook-side ``spe-export`` command."""
