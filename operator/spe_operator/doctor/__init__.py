"""The preflight doctor: is this cluster fit to be a Secure Processing Environment?

``spe-operator doctor`` runs every check and prints a table (exit status 0: fit; 1: a check
failed; 2: UNSAFE, NetworkPolicies are not enforced); the operator runs the checks that need no
probe pods at start-up and reports them as Events on its namespace. One module per job:
``report`` (results, verdict, table), ``checks`` (storage, IdP, GPU labels, webhook, audit
sink), ``netprobe`` (two probe pods and a forbidden connection).
"""

from .report import CheckResult, Status, exit_code, render_table, verdict

__all__ = ["CheckResult", "Status", "exit_code", "render_table", "verdict"]
