"""The SPE Kopf operator: reconcilers, builders of child objects, admission, federation."""
