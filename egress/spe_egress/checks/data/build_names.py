"""Regenerate ``names.tsv`` (given names and surnames of EU languages) from Faker's person
providers. Not imported at run time: the gateway reads the TSV, and Faker is not a dependency.

    pip install 'faker==40.63.0' && python egress/spe_egress/checks/data/build_names.py

Source: Faker (https://pypi.org/project/Faker/, MIT licence, copyright Daniele Faraglia and
contributors), ``faker/providers/person/<locale>/__init__.py``: the ``first_names*`` and
``last_names*`` lists of the locales below. Names are folded to lower case; a name that is
also a common word in these languages is kept in the list but the detector needs a second
signal (a given name *and* a surname, or a title) before it reports anything.
"""

from __future__ import annotations

import importlib
import pathlib
import unicodedata

LOCALES = ("bg_BG cs_CZ da_DK de_AT de_CH de_DE de_LU el_GR en_GB en_IE es_ES et_EE fi_FI fr_BE fr_CH fr_FR "
           "ga_IE hr_HR hu_HU is_IS it_IT lt_LT lv_LV nl_BE nl_NL no_NO pl_PL pt_PT ro_RO sk_SK sl_SI sv_SE").split()
OUT = pathlib.Path(__file__).with_name("names.tsv")


def _names(value) -> list[str]:
    if isinstance(value, dict):
        value = list(value)
    return [v for v in value if isinstance(v, str)]


def main() -> None:
    import faker

    given: dict[str, set[str]] = {}
    family: dict[str, set[str]] = {}
    for loc in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        for attr in dir(provider):
            target = given if "first_names" in attr else family if "last_names" in attr else None
            if target is None:
                continue
            for name in _names(getattr(provider, attr)):
                name = unicodedata.normalize("NFC", name.strip())
                parts = name.split()
                if len(parts) > 1 and all(p[:1].islower() for p in parts[:-1]):
                    name = parts[-1]  # "de Vries", "van Dijk": the particles are matched by the detector
                if len(name) < 2 or " " in name:
                    continue
                target.setdefault(name.lower(), set()).add(loc[:2])
    lines = [f"# given names and surnames of EU languages, from Faker {faker.VERSION} (MIT licence); "
             "regenerate with build_names.py", "# kind\tname\tlanguages"]
    for kind, table in (("given", given), ("surname", family)):
        lines += [f"{kind}\t{n}\t{','.join(sorted(table[n]))}" for n in sorted(table)]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(given)} given names, {len(family)} surnames")


if __name__ == "__main__":
    main()
