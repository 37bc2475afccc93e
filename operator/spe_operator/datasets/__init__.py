"""The Dataset reconciler: a Dataset becomes an encrypted claim per revision and an ingest Job
(an Indexed Job of shards first when ``ingest_shards`` > 1) running ``spe-ingest`` from the ingest
image; its status comes from what the operator observes (Jobs, their pods' termination messages,
claims), never from what is written in it.

Modules: ``names`` (names, labels, messages), ``builders`` (pure manifests), ``report`` (the
termination message and the status it gives, pure), ``controller`` (the one reconcile, I/O).
"""
