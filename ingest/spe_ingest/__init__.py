"""spe_ingest: the SPE's anonymising DICOM ingest (PS3.15 Annex E)."""

__version__ = "0.1.0"
