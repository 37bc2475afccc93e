"""k-anonymity over the quasi-identifiers that survive de-identification.

One record per patient.  Each surviving quasi-identifier is generalised to a
band first (age by decade, size by 10 cm, weight by 10 kg, study and birth
dates by year); an attribute that was removed or emptied is not a
quasi-identifier.
The dataset's k is the size of its smallest equivalence class.
"""
from __future__ import annotations

from collections import Counter

QI_NAMES = ("age", "sex", "size", "weight", "institution", "ethnic_group", "study_year",
            "birth_year")
# The DICOM keyword of each quasi-identifier (Dataset.spec.kAnonymity.quasiIdentifiers names
# them this way; spe-ingest run --quasi-identifier KEYWORD).
QI_KEYWORDS = {"PatientAge": "age", "PatientSex": "sex", "PatientSize": "size",
               "PatientWeight": "weight", "InstitutionName": "institution",
               "EthnicGroup": "ethnic_group", "StudyDate": "study_year",
               "PatientBirthDate": "birth_year"}


def _band_age(value: str) -> str:
    value = value.strip().upper()
    if len(value) != 4 or not value[:3].isdigit():
        return ""
    number, unit = int(value[:3]), value[3]
    years = number if unit == "Y" else 0
    low = min(years // 10 * 10, 90)
    return "90+" if low == 90 else f"{low}-{low + 9}"


def _band(value: str, width: float, unit: str) -> str:
    try:
        number = float(value.split("\\")[0])
    except ValueError:
        return ""
    low = int(number // width * width * 100) / 100
    return f"{low:g}-{low + width:g}{unit}"


def qi_record(values: dict[str, str]) -> tuple[str, ...]:
    """Generalised quasi-identifier tuple from the written values (strings)."""
    return (
        _band_age(values.get("age", "")),
        values.get("sex", "").strip().upper(),
        _band(values["size"], 0.1, "m") if values.get("size") else "",
        _band(values["weight"], 10, "kg") if values.get("weight") else "",
        values.get("institution", "").strip().upper(),
        values.get("ethnic_group", "").strip().upper(),
        _year(values.get("study_date", "")),
        _year(values.get("birth_date", "")),
    )


def _year(value: str) -> str:
    return value[:4] if value[:4].isdigit() else ""


def k_anonymity(records: dict[str, tuple], threshold: int,
                names: tuple[str, ...] | None = None) -> dict:
    """records: patient pseudonym -> QI tuple.  Returns the report section.

    ``names``: the quasi-identifiers considered (of :data:`QI_NAMES`); None: all of them."""
    used = [i for i in range(len(QI_NAMES)) if (names is None or QI_NAMES[i] in names)
            and any(r[i] for r in records.values())]
    classes = Counter(tuple(r[i] for i in used) for r in records.values())
    k = min(classes.values()) if classes else 0
    below = [{"class": {QI_NAMES[i]: v for i, v in zip(used, key)}, "size": n}
             for key, n in sorted(classes.items()) if n < threshold]
    return {
        "k": k,
        "threshold": threshold,
        "patients": len(records),
        "quasi_identifiers": [QI_NAMES[i] for i in used],
        "classes": len(classes),
        "classes_below_threshold": below,
        "refused": bool(records) and k < threshold,
    }
