"""Lint of images/*/Dockerfile (no Docker engine here: written and checked, not built)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.permits

IMAGES = Path(__file__).resolve().parents[2] / "images"
EXPECTED = {"operator", "hub", "notebook-jupyterlab", "ingest", "egress", "gpu-agent"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SECRETISH = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_KEY|ACCESS_KEY)", re.I)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def lint(path: Path) -> list[str]:
    problems = []
    ins = instructions(path)
    stages: set[str] = set()
    # Build arguments declared before the first FROM may name the base (FROM ${BASE_IMAGE}):
    # their default is what a release builds from, so the default is what must be pinned.
    global_args: dict[str, str] = {}
    for word, args in ins:
        if word == "FROM":
            break
        if word == "ARG" and "=" in args:
            key, _, value = args.partition("=")
            global_args[key.strip()] = value.strip()
    for word, args in ins:
        if word == "FROM":
            parts = [p for p in args.split() if not p.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), parts[0])
            earlier = image.lower() in stages
            if len(parts) >= 3 and parts[1].upper() == "AS":
                stages.add(parts[2].lower())
            if earlier:
                continue  # built on an earlier stage of this file
            if not DIGEST.search(image):
                problems.append(f"FROM {image}: base not pinned by digest")
            name = image.split("@")[0]
            if name.endswith(":latest") or ":" not in name.rsplit("/", 1)[-1]:
                problems.append(f"FROM {image}: 'latest' or no tag")
        if word == "ADD" and re.search(r"\b(https?|ftp|git)://|git@", args):
            problems.append(f"ADD {args}: remote ADD (use COPY or a pinned package)")
        if word in ("ENV", "ARG") and SECRETISH.search(args):
            problems.append(f"{word} {args}: looks like a secret baked into the image")
        if word == "RUN" and re.search(r":latest\b|@latest\b", args):
            problems.append(f"RUN {args}: installs 'latest'")
    final_stage = max((i for i, (w, _) in enumerate(ins) if w == "FROM"), default=-1)
    final_users = [args for i, (w, args) in enumerate(ins) if w == "USER" and i > final_stage]
    if not final_users:
        problems.append("no USER in the final stage (runs as root)")
    else:
        user = final_users[-1].split(":")[0]
        if not user.isdigit() or int(user) == 0:
            problems.append(f"USER {final_users[-1]}: must be a numeric non-root uid (runAsNonRoot checks it)")
    if not any(w == "HEALTHCHECK" for w, _ in ins):
        problems.append("no HEALTHCHECK (write HEALTHCHECK NONE with the reason where none fits)")
    return problems


def test_one_dockerfile_per_image():
    assert {p.parent.name for p in IMAGES.glob("*/Dockerfile")} == EXPECTED


@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_dockerfile_is_clean(image):
    assert lint(IMAGES / image / "Dockerfile") == []


def test_lint_catches_the_bad_patterns(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nADD https://example.invalid/x.tgz /x\nENV API_TOKEN=abc\n"
                   "FROM debian:12\nRUN npm i -g foo@latest\nUSER root\n")
    problems = lint(bad)
    assert any("not pinned by digest" in p for p in problems)
    assert any("'latest'" in p for p in problems)
    assert any("remote ADD" in p for p in problems)
    assert any("secret" in p for p in problems)
    assert any("installs 'latest'" in p for p in problems)
    assert any("numeric non-root" in p for p in problems)
    assert any("HEALTHCHECK" in p for p in problems)
