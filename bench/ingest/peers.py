"""Run one peer anonymiser over a corpus in this process (used by run.py).

    python peers.py dicognito SRC OUT
    python peers.py dicom-anonymizer SRC OUT

Each tool is used the way its own command line uses it: read a file with
pydicom, anonymise the dataset, save it.  One process, as the tools ship.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path


def files(src: Path):
    for dirpath, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            yield Path(dirpath, name)


def run_dicognito(src: Path, out: Path) -> int:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    n = 0
    for path in files(src):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out / f"{ds.SOPInstanceUID}.dcm")   # as its SaveToSOPInstanceUID
        n += 1
    return n


def run_dicom_anonymizer(src: Path, out: Path) -> int:
    from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file

    n = 0
    for path in files(src):
        anonymize_dicom_file(str(path), str(out / f"{n:06d}.dcm"))
        n += 1
    return n


def main() -> int:
    tool, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    runner = {"dicognito": run_dicognito, "dicom-anonymizer": run_dicom_anonymizer}[tool]
    print(runner(src, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
