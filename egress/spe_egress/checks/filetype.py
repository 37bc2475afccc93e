"""File-level checks: size, type allow-list, medical images, opaque content, and names
whose extension disagrees with the content."""

from __future__ import annotations

from .model import CheckPolicy, FileInput, Finding, Severity
from .sniff import (ARCHIVE, BINARY, BINARY_EXTENSIONS, EMPTY, EXECUTABLE, MEDICAL, MODEL, PICKLE,
                    TEXT, TEXT_EXTENSIONS, Sniffed)

_FAMILY_WORDS = {
    MEDICAL: "a medical image", ARCHIVE: "an archive", PICKLE: "a Python pickle", MODEL: "model weights or arrays",
    EXECUTABLE: "an executable or script", BINARY: "unrecognised binary data", TEXT: "text",
}
_WHY_OPAQUE = {
    ARCHIVE: "Archives hide their contents from the automatic checks; submit the files individually.",
    PICKLE: "Pickles are opaque (and run code when loaded); they can carry any data. Export results as CSV or JSON.",
    MODEL: "Model weights and arrays can memorise training data and cannot be checked automatically; they need a "
           "specialist review under the permit's model-release rules.",
    EXECUTABLE: "Programs and scripts can carry or encode data and are not results.",
    BINARY: "The content could not be recognised, so it cannot be checked.",
}
# Extension -> detected types that are a legitimate reading of it.
_COMPATIBLE = {
    "hdr": {"nifti", "analyze"}, "img": {"analyze", "binary"}, "pt": {"pytorch", "pickle"},
    "pth": {"pytorch", "pickle"}, "ckpt": {"pytorch", "pickle", "zip"}, "joblib": {"pickle", "binary"},
    "keras": {"keras", "zip"}, "tgz": {"gzip"}, "tar.gz": {"gzip"}, "gz": {"gzip"},
    "class": {"macho"},  # Java class files share Mach-O's universal-binary magic
}


def describe(s: Sniffed) -> str:
    word = _FAMILY_WORDS.get(s.family, f"a {s.family}")
    return f"{s.type.upper()} ({word}{', ' + s.detail if s.detail else ''})" if s.family != TEXT else \
        f"{s.type.upper()} text"


def check_file(f: FileInput, s: Sniffed, policy: CheckPolicy) -> list[Finding]:
    out: list[Finding] = []
    size = len(f.data)
    if s.family == EMPTY:
        out.append(Finding("file.empty", Severity.INFO, "The file is empty."))
    if size > policy.max_file_bytes:
        out.append(Finding("file.size", Severity.BLOCK,
                           f"The file is {size:,} bytes, over the permit's limit of {policy.max_file_bytes:,} "
                           "bytes per file. Export a summary instead of raw data.", {"bytes": size}))
    allowed = s.type in policy.allowed_types or s.family in policy.allowed_types
    if s.family == MEDICAL:
        out.append(Finding("file.medical-image", Severity.BLOCK,
                           f"The content is {describe(s)}. Medical images never leave the secure environment, "
                           "whatever their name; export derived measurements or figures instead.",
                           {"type": s.type}))
    elif s.family != EMPTY and not allowed:
        out.append(Finding("file.type-not-allowed", Severity.BLOCK,
                           f"The content is {describe(s)}, which the permit's export policy does not allow "
                           f"(allowed: {', '.join(policy.allowed_types)}). " + _WHY_OPAQUE.get(s.family, ""),
                           {"type": s.type}))
    elif s.family in _WHY_OPAQUE:
        out.append(Finding("file.opaque", Severity.WARN,
                           f"The content is {describe(s)}. The policy allows it, but " + _WHY_OPAQUE[s.family][0].lower()
                           + _WHY_OPAQUE[s.family][1:], {"type": s.type}))
    mismatch = _mismatch(f.extension, s)
    if mismatch:
        out.append(Finding("file.type-mismatch", Severity.WARN,
                           f"The name '{f.name}' suggests {mismatch}, but the content is {describe(s)}. A name that "
                           "disagrees with the content may be an attempt to pass the checks; the content decides.",
                           {"extension": f.extension, "type": s.type}))
    return out


def _mismatch(ext: str, s: Sniffed) -> str | None:
    if not ext or s.family == EMPTY:
        return None
    if ext in TEXT_EXTENSIONS:
        if s.family == TEXT or (s.type == "script" and TEXT_EXTENSIONS[ext] == "script"):
            return None
        return f"a .{ext} text file"
    expected = BINARY_EXTENSIONS.get(ext)
    if expected is None or expected == s.type or s.type in _COMPATIBLE.get(ext, ()):
        return None
    return f"a .{ext} file ({expected})"
