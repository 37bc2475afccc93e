"""The permits' groups in the identity provider (Keycloak).

One flat top-level group per permit, ``permit-<name>``, holds the Keycloak users the permit
names while it is Pending or Active, and nobody once it is Suspended, Expired or Revoked (the
hub sessions of the people taken out are ended then). The hub reads the group from the token.

- ``plan``: pure: desired vs actual membership -> what to add, remove and end, and the
  ``IdentitySynced`` condition it earns;
- ``client``: a thin wrapper of python-keycloak's async admin API (the operator's
  client-credentials service account);
- ``sync``: one permit's sync and its group's removal (the finalizer's work), on the wrapper;
- ``reconcile``: what the DataPermit reconciler calls (finalizer, backoff, condition).
"""
