"""De-identification of one DICOM object, bytes in, bytes out.

``Deidentifier.run(data)`` tokenises the file (``dicomio``), classifies it
(screenshot, secondary capture, burned-in annotation, non-image), walks every
element at any depth applying the compiled profile, and assembles a new file
with a fresh file meta group.  Elements that are kept unchanged are copied as
their original bytes.  Pixel data are never decoded, except with the Clean
Pixel Data option (``cleanpixels``), which looks for burned-in text in every
frame of every image and blanks it.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from hashlib import blake2b, sha256


from . import __version__
from .dictionary import is_image_storage
from .dictionary import tag as _t
from .dicomio import (PIXEL_DATA, DicomError, Elem, Encoder, file_bytes, implicit_vr, parse,
                      text)
from .keep import KEEP_TAGS, SAFE_PRIVATE
from .keys import Keys, shift_da
from .profile import (CLEAN, CLEAN_PIXEL_DATA, CWALK, DUMMY, KEEP, OPTION_CODES, PSEUDO,
                      REMOVE, SHIFT, SITE, UID, WALK, YEAR, ZERO, Profile, method_codes)

IMPL_UID = "2.25.196139432385718924118539617429785236431"
IMPL_NAME = "SPE_INGEST_" + __version__.replace(".", "")

T = {k: _t(k) for k in (
    "SOPClassUID", "SOPInstanceUID", "ImageType", "BurnedInAnnotation", "PatientID",
    "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns",
    "SamplesPerPixel", "BitsAllocated", "NumberOfFrames", "PatientAge", "PatientSex",
    "PatientSize", "PatientWeight", "InstitutionName", "EthnicGroup", "StudyDate",
    "PatientBirthDate", "PatientIdentityRemoved", "DeidentificationMethod",
    "DeidentificationMethodCodeSequence", "LongitudinalTemporalInformationModified",
    "CodeValue", "CodingSchemeDesignator", "CodeMeaning", "FloatPixelData",
    "DoubleFloatPixelData", "AccessionNumber", "StudyID")}
PIXEL_TAGS = (PIXEL_DATA, T["FloatPixelData"], T["DoubleFloatPixelData"])
QI_TAGS = frozenset(T[k] for k in ("PatientAge", "PatientSex", "PatientSize",
                                   "PatientWeight", "InstitutionName", "EthnicGroup",
                                   "StudyDate", "PatientBirthDate"))
SCRUB_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames",
    "PatientBirthName", "PatientMotherBirthName", "AccessionNumber", "StudyID",
    "PatientBirthDate", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
    "InstitutionName", "InstitutionAddress", "PatientAddress",
    "PatientTelephoneNumbers", "MedicalRecordLocator", "StationName",
    "DeviceSerialNumber", "InstitutionalDepartmentName", "RequestingPhysician")
SCRUB_TAGS = frozenset(_t(k) for k in SCRUB_KEYWORDS)
SC_CLASSES = ("1.2.840.10008.5.1.4.1.1.7",)  # and its multi-frame children .7.x
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
DUMMY_VALUES = {b"PN": b"ANONYMOUS", b"DA": b"19000101", b"TM": b"000000",
                b"DT": b"19000101000000", b"AS": b"000Y", b"DS": b"0", b"IS": b"0"}
TEXTUAL = frozenset(b"AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
FREE_TEXT = frozenset(b"LO LT PN SH ST UC UT".split())
_UID_RE = re.compile(r"[0-9][0-9.]{0,63}")
GENERIC_PATTERNS = re.compile(
    r"\b\d{4}[-./]?\d{2}[-./]?\d{2}\b|\b\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b"
    r"|\d{5,}|[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d ()-]{7,}\d")


@dataclass(slots=True)
class Outcome:
    outcome: str                 # accepted | quarantined | dropped | rejected
    reason: str = ""
    data: bytes | None = None
    relpath: str = ""            # under DST
    patient: str = ""
    study: str = ""
    series: str = ""
    sop: str = ""
    pixel_hash: str = ""
    qi: dict = field(default_factory=dict)
    pixel_check: str = ""        # with clean-pixel-data: see cleanpixels.PixelCheck
    pixel_regions: list = field(default_factory=list)   # [{frame, box, confidence}]
    pixel_detail: str = ""       # why the pixels could not be examined


def _is_image_class(uid: str) -> bool:
    return is_image_storage(uid)


def _decode_us(raw: bytes, little: bool) -> int | None:
    if len(raw) < 2:
        return None
    return struct.unpack("<H" if little else ">H", raw[:2])[0]


class Deidentifier:
    def __init__(self, profile: Profile, keys: Keys, site: str, *, quarantine_screenshots: bool = False,
                 drop_secondary_captures: bool = False):
        self.p = profile
        # Dataset.spec.anonymisation.dropScreenshots=false holds screenshots for review instead of
        # dropping them; quarantineSecondaryCaptures=false drops other secondary captures instead
        # of holding them. Neither ever lets such an object into data/.
        self.quarantine_screenshots = quarantine_screenshots
        self.drop_secondary_captures = drop_secondary_captures
        self.keys = keys
        self.site = site.encode()
        self.actions = profile.actions
        self.safe_private = profile.safe_private
        self.lmd = (profile.year_dates or
                    "retain-longitudinal-modified-dates" in profile.options)
        self.lfd = "retain-longitudinal-full-dates" in profile.options
        self.codes = method_codes(profile)
        self.method = ["DICOM PS3.15 E.1-1 Basic Profile",
                       f"spe-ingest {__version__} profile {profile.name}"] + \
            sorted(profile.options)
        self.pixel_cleaner = None
        if CLEAN_PIXEL_DATA in profile.options:
            from .cleanpixels import PixelCleaner
            self.pixel_cleaner = PixelCleaner()

    # ------------------------------------------------------------ entry point
    def run(self, data: bytes) -> Outcome:
        try:
            parsed = parse(data)
        except DicomError as exc:
            return Outcome("rejected", exc.reason)
        self.buf = buf = parsed.buf
        self.enc = Encoder(parsed.explicit, parsed.little)
        top = {el.tag: el for el in parsed.elems}

        def val(tag: int) -> str:
            el = top.get(tag)
            return text(buf[el.vstart:el.vend]) if el is not None and el.items is None else ""

        sop_class = val(T["SOPClassUID"]) or text(parsed.meta.get(0x00020002, b""))
        if not sop_class:
            return Outcome("rejected", "no-sop-class")
        if sop_class == MEDIA_DIRECTORY:
            return Outcome("rejected", "media-directory")
        sop_raw = val(T["SOPInstanceUID"]) or text(parsed.meta.get(0x00020003, b""))
        if not sop_raw:
            return Outcome("rejected", "no-sop-instance")
        image_type = [v.strip().upper() for v in val(T["ImageType"]).split("\\")]
        screenshot = "SCREEN SAVE" in image_type
        if screenshot and not self.quarantine_screenshots:
            return Outcome("dropped", "screenshot")
        pixel = next((top[t] for t in PIXEL_TAGS if t in top), None)
        reason = ""
        if pixel is not None and not pixel.undefined:
            short = self._short_pixels(top, pixel, parsed.little)
            if short:
                return Outcome("rejected", "truncated")
        if screenshot:
            reason = "screenshot"
        elif sop_class.startswith(SC_CLASSES) or image_type[:2] == ["DERIVED", "SECONDARY"]:
            if self.drop_secondary_captures:
                return Outcome("dropped", "secondary-capture")
            reason = "secondary-capture"
        elif val(T["BurnedInAnnotation"]).upper() == "YES":
            reason = "burned-in-annotation"
        elif pixel is None:
            if _is_image_class(sop_class):   # an image without pixels: cut short
                return Outcome("rejected", "missing-pixel-data")
            reason = "non-image-object"

        # who is this?  the key for the pseudonym and the date shift
        pid = val(T["PatientID"]).encode("latin-1")
        pname = val(T["PatientName"]).encode("latin-1")
        study_raw = val(T["StudyInstanceUID"]).encode()
        patient_key = (b"id:" + pid if pid else b"name:" + pname if pname
                       else b"study:" + study_raw)
        self.patient = self.keys.pseudonym(b"patient", patient_key)
        self.offset = self.keys.date_offset(patient_key) if self.lmd else 0
        self.top = top
        self._scrub = None
        self.qi = {}

        check = None
        if self.pixel_cleaner is not None and pixel is not None:
            check = self.pixel_cleaner.check(data, parsed, top, pixel)
            reason = check.reason(reason)

        keep_uids = "retain-uids" in self.p.options
        sop_new = self._uid_for_path(sop_raw, keep_uids)
        out = self._dataset(parsed.elems, False, 0)
        if check is not None and check.cleaned_value is not None:
            out = [(tag, buf[pixel.hstart:pixel.vstart] + check.cleaned_value)
                   if tag == pixel.tag else (tag, b) for tag, b in out]
        out = self._finish(out, top, sop_class, sop_new, check)
        out.sort(key=lambda x: x[0])
        body = b"".join(b for _, b in out)
        blob = file_bytes(sop_class, sop_new, parsed.ts, body, IMPL_UID, IMPL_NAME)

        study = val(T["StudyInstanceUID"])
        series = val(T["SeriesInstanceUID"])
        study = self._uid_for_path(study, keep_uids) if study else "no-study"
        series = self._uid_for_path(series, keep_uids) if series else "no-series"
        area = "quarantine" if reason else "data"
        relpath = f"{area}/{self.patient}/{study}/{series}/{sop_new}.dcm"
        phash = ""
        if pixel is not None:
            phash = blake2b(buf[pixel.vstart:pixel.vend], digest_size=16).hexdigest()
        return Outcome("quarantined" if reason else "accepted", reason, blob, relpath,
                       self.patient, study, series, sop_new, phash, self.qi,
                       check.status if check is not None else "",
                       check.regions if check is not None else [],
                       check.detail if check is not None else "")

    def _uid_for_path(self, uid: str, keep: bool) -> str:
        """The UID as written, and as a path component: a retained UID that is
        not a well-formed UID (it could hold '/' or '..') is replaced."""
        if keep and _UID_RE.fullmatch(uid):
            return uid
        return self.keys.uid(uid.encode()).decode()

    def _short_pixels(self, top, pixel: Elem, little: bool) -> bool:
        buf = self.buf

        def us(tag, default):
            el = top.get(tag)
            if el is None:
                return default
            got = _decode_us(buf[el.vstart:el.vend], little)
            return default if got is None else got

        rows, cols = us(T["Rows"], 0), us(T["Columns"], 0)
        spp, bits = us(T["SamplesPerPixel"], 1), us(T["BitsAllocated"], 8)
        el = top.get(T["NumberOfFrames"])
        frames = 1
        if el is not None:
            try:
                frames = int(text(buf[el.vstart:el.vend]) or 1)
            except ValueError:
                frames = 1
        expected = (rows * cols * spp * frames * bits + 7) // 8
        return (pixel.vend - pixel.vstart) < expected

    # ------------------------------------------------------------ the walk
    def _dataset(self, elems: list, clean_mode: bool, depth: int) -> list:
        buf = self.buf
        actions = self.actions
        out = []
        append = out.append
        creators_needed = None
        for el in elems:
            tag = el.tag
            group = tag >> 16
            if group & 1:
                if self.safe_private and (tag & 0xFFFF) >= 0x1000:
                    if creators_needed is None:
                        creators_needed = self._creators(elems)
                    creator = creators_needed[0].get((group, (tag & 0xFFFF) >> 8))
                    if (creator, group, tag & 0xFF) in SAFE_PRIVATE:
                        append((tag, buf[el.hstart:el.vend]))
                        creators_needed[1].add(group << 16 | (tag & 0xFFFF) >> 8)
                continue
            if tag & 0xFFFF == 0 or group == 0x0002:
                continue  # group lengths are stale after editing; meta is rebuilt
            if el.vr == b"UN" and (el.items is not None or implicit_vr(tag) == b"SQ"):
                # a sequence hidden in a UN element is encoded differently from
                # its data set; it cannot be walked safely, so it goes
                continue
            act = actions.get(tag)
            if act is None:
                if 0x5000 <= group <= 0x60FF and (group & 0xFF00) in (0x5000, 0x6000):
                    if group & 0xFF00 == 0x6000 and tag & 0xFFFF == 0x4000:
                        act = self.p.overlay_comments
                    else:
                        act = REMOVE
                elif tag in KEEP_TAGS:
                    act = WALK if el.items is not None else KEEP
                elif clean_mode:
                    act = (CWALK if el.items is not None else
                           CLEAN if el.vr in FREE_TEXT else KEEP)
                else:
                    continue
            if act == REMOVE:
                continue
            if act == KEEP:
                append((tag, buf[el.hstart:el.vend]))
                if depth == 0 and tag in QI_TAGS:
                    self.qi[tag] = buf[el.vstart:el.vend]
                continue
            self._apply(act, el, clean_mode, depth, append)
        if creators_needed is not None:
            for el in elems:
                if el.tag in creators_needed[1]:
                    append((el.tag, buf[el.hstart:el.vend]))
        return out

    def _creators(self, elems):
        found = {}
        for el in elems:
            g, e = el.tag >> 16, el.tag & 0xFFFF
            if g & 1 and 0x10 <= e <= 0xFF:
                found[(g, e)] = text(self.buf[el.vstart:el.vend])
        return found, set()

    def _apply(self, act: int, el: Elem, clean_mode: bool, depth: int, append) -> None:
        tag, vr, enc = el.tag, el.vr, self.enc
        raw = self.buf[el.vstart:el.vend]
        if el.items is not None:
            if act in (WALK, CWALK, DUMMY, UID, PSEUDO):
                sub = act == CWALK or clean_mode
                bodies = []
                for item in el.items:
                    res = self._dataset(item, sub, depth + 1)
                    res.sort(key=lambda x: x[0])
                    bodies.append(b"".join(b for _, b in res))
                append((tag, enc.sequence(tag, bodies)))
            elif act != REMOVE:  # ZERO and anything else: an empty sequence
                append((tag, enc.sequence(tag, [])))
            return
        if act == ZERO:
            value = b""
        elif act == UID:
            if vr not in (b"UI", b"UN") and vr in TEXTUAL:
                value = DUMMY_VALUES.get(vr, b"ANONYMIZED")
            else:
                parts = raw.rstrip(b"\x00 ").split(b"\\")
                value = b"\\".join(self.keys.uid(p.strip()) for p in parts if p.strip())
                vr = b"UI"
        elif act == PSEUDO:
            original = text(raw).encode("latin-1")
            if not original:
                value = b""
            elif tag in (T["PatientID"], T["PatientName"]) and depth == 0:
                value = self.patient.encode()
            else:
                value = self.keys.pseudonym(b"id:%08x" % tag, original).encode()
        elif act == DUMMY:
            if vr == b"UI":
                value = b"\\".join(self.keys.uid(p.strip())
                                   for p in raw.rstrip(b"\x00 ").split(b"\\") if p.strip())
            elif vr in TEXTUAL:
                value = DUMMY_VALUES.get(vr, b"ANONYMIZED")
            else:
                value = b""
        elif act == SHIFT:
            value = self._shift(raw, vr)
        elif act == YEAR:
            value = self._year(raw, vr)
        elif act == CLEAN:
            value = self._clean(raw) if vr in FREE_TEXT or vr == b"UN" else raw
        elif act == SITE:
            value = self.site
        else:  # KEEP reached through a clean walk
            value = raw
        if depth == 0 and tag in QI_TAGS:
            self.qi[tag] = value
        append((tag, enc.element(tag, vr, value)))

    # ------------------------------------------------------------ values
    def _shift(self, raw: bytes, vr: bytes) -> bytes:
        out = []
        for part in text(raw).split("\\"):
            if vr == b"DT":
                head = shift_da(part[:8], self.offset)
                out.append(head + part[8:] if head else "")
            else:
                pieces = [shift_da(p, self.offset) if p else "" for p in part.split("-")]
                out.append("" if None in pieces else "-".join(pieces))
        return "\\".join(out).encode() if any(out) else b""

    @staticmethod
    def _year(raw: bytes, vr: bytes) -> bytes:
        out = []
        for part in text(raw).split("\\"):
            year = part[:4]
            out.append(year + "0101" if year.isdigit() else "")
        return "\\".join(out).encode() if any(out) else b""

    def _clean(self, raw: bytes) -> bytes:
        if self._scrub is None:
            self._scrub = self._scrubber()
        value = raw.decode("latin-1")
        if self._scrub is not False:
            value = self._scrub.sub("*", value)
        return GENERIC_PATTERNS.sub("*", value).encode("latin-1")

    def _scrubber(self):
        tokens = set()
        for tag in SCRUB_TAGS:
            el = self.top.get(tag)
            if el is None or el.items is not None:
                continue
            value = text(self.buf[el.vstart:el.vend])
            for v in value.split("\\"):
                v = v.strip()
                if len(v) >= 2:
                    tokens.add(v)
                tokens.update(p for p in re.split(r"[\^=,\s]+", v) if len(p) >= 3)
        if not tokens:
            return False
        alternation = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
        return re.compile(alternation, re.IGNORECASE)

    # ------------------------------------------------------------ additions
    def _finish(self, out: list, top: dict, sop_class: str, sop_new: str, check=None) -> list:
        enc = self.enc
        replaced = {T["PatientIdentityRemoved"], T["DeidentificationMethod"],
                    T["DeidentificationMethodCodeSequence"],
                    T["LongitudinalTemporalInformationModified"]}
        codes, method = self.codes, self.method
        if self.pixel_cleaner is not None and (check is None or not check.examined):
            # the option was not applied to this object's pixels: do not claim it
            codes = [c for c in codes if c != OPTION_CODES[CLEAN_PIXEL_DATA]]
            method = [m for m in method if m != CLEAN_PIXEL_DATA]
        if check is not None and check.cleaned_value is not None:
            # PS3.15 E.3.1: Burned In Annotation NO once the text is removed
            out = [x for x in out if x[0] != T["BurnedInAnnotation"]]
            out.append((T["BurnedInAnnotation"],
                        enc.element(T["BurnedInAnnotation"], b"CS", b"NO")))
        present = {tag for tag, _ in out}
        out = [x for x in out if x[0] not in replaced]
        for kw, value in (("SOPClassUID", sop_class), ("SOPInstanceUID", sop_new)):
            if T[kw] not in present:   # some inputs carry them only in the file meta
                out.append((T[kw], enc.element(T[kw], b"UI", value.encode())))
        for kw in ("PatientID", "PatientName"):
            if T[kw] not in present:
                out.append((T[kw], enc.element(T[kw], b"LO" if kw == "PatientID" else b"PN",
                                               self.patient.encode())))
        if self.p.institution_site and T["InstitutionName"] not in present:
            out.append((T["InstitutionName"],
                        enc.element(T["InstitutionName"], b"LO", self.site)))
            self.qi[T["InstitutionName"]] = self.site
        out.append((T["PatientIdentityRemoved"],
                    enc.element(T["PatientIdentityRemoved"], b"CS", b"YES")))
        method = "\\".join(m[:64] for m in method).encode()
        out.append((T["DeidentificationMethod"],
                    enc.element(T["DeidentificationMethod"], b"LO", method)))
        items = []
        for value, meaning in codes:
            items.append(b"".join((
                enc.element(T["CodeValue"], b"SH", value.encode()),
                enc.element(T["CodingSchemeDesignator"], b"SH", b"DCM"),
                enc.element(T["CodeMeaning"], b"LO", meaning.encode()))))
        out.append((T["DeidentificationMethodCodeSequence"],
                    enc.sequence(T["DeidentificationMethodCodeSequence"], items)))
        ltim = b"UNMODIFIED" if self.lfd else b"MODIFIED" if self.lmd else b"REMOVED"
        out.append((T["LongitudinalTemporalInformationModified"],
                    enc.element(T["LongitudinalTemporalInformationModified"], b"CS", ltim)))
        return out


def sha256_hex(data: bytes) -> str:
    return sha256(data).hexdigest()
