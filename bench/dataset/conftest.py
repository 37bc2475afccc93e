"""The dataset benchmark runs on the dataset tests' fixtures (cluster, real node, local-path
provisioner, the operator with ingest settings)."""

from tests.dataset.conftest import (dataset_env, dataset_operator, local_path,  # noqa: F401
                                    real_node)
