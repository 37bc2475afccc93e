"""Steps a person takes in headless Chromium, shared by the researcher's journey
(tests/hub/test_journey.py) and the demo's (tests/install/test_demo.py): Keycloak's login form,
a JupyterLab cell run and read, numbered screenshots with their times, and the export's whole
round: request, the reviewers' approvals, the download."""

from __future__ import annotations

import re
import zipfile
import time
from pathlib import Path


# what a researcher exports: every cell over the disclosure check's minimum (10), so reviewers may approve
EXPORT_TABLE = "site,patients\nA,120\nB,95\nC,41\n"


def artefacts_dir(kind: str) -> Path:
    """.cache/artefacts/<kind>/<time>/: where a browser test keeps its screenshots and files."""
    d = Path(__file__).resolve().parents[2] / ".cache" / "artefacts" / kind / time.strftime("%Y%m%dT%H%M%S")
    d.mkdir(parents=True, exist_ok=True)
    return d


class Shots:
    """Numbered screenshots of each step, and the step's time since the journey began."""

    def __init__(self, directory: Path):
        self.dir, self.n, self.t0, self.times = directory, 0, time.monotonic(), {}

    async def take(self, page, step: str) -> None:
        self.n += 1
        self.times[step] = round(time.monotonic() - self.t0, 1)
        await page.screenshot(path=str(self.dir / f"{self.n:02d}-{step}.png"), full_page=True)


async def keycloak_login(page, username: str, password: str) -> None:
    await page.wait_for_selector("#kc-form-login", timeout=60_000)
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#kc-login")


async def run_cell(page, code: str, marker: str) -> str:
    """Type ``code`` into the notebook's active cell, run it, return its output once ``marker``
    is printed (each cell's code prints its own marker last)."""
    # a cell run before the kernel is connected is silently not run: wait for it to be idle
    await page.get_by_text(re.compile(r"\(ipykernel\) \| Idle")).first.wait_for(timeout=120_000)
    editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content")
    await editor.click()
    await page.keyboard.insert_text(code)
    await page.keyboard.press("Shift+Enter")
    out = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output", has_text=marker)
    await out.first.wait_for(timeout=120_000)
    return await out.first.inner_text()


DATA_CELL = (
    "import errno, os\n"
    "print('FILES', len(os.listdir('{data}')), sorted(os.listdir('{data}'))[:3])\n"
    "try:\n"
    "    open('{data}/mine.txt', 'w')\n"
    "    print('WRITE ok')\n"
    "except OSError as e:\n"
    "    print('WRITE', errno.errorcode[e.errno])\n"
    "print('CELL-1')\n")


async def look_at_data(page, data: str) -> int:
    """A cell lists ``data`` and tries to write there: it must be read-only; returns the count."""
    listing = await run_cell(page, DATA_CELL.format(data=data), "CELL-1")
    assert "WRITE EROFS" in listing, listing
    count = int(re.search(r"FILES (\d+)", listing)[1])
    assert count > 0, listing
    return count


async def request_export(page, table: str) -> str:
    """A cell writes outputs/table1.csv and runs ``spe-export request``; returns the request id."""
    exported = await run_cell(page, (
        "import json, os, subprocess\n"
        "os.makedirs('outputs', exist_ok=True)\n"
        f"open('outputs/table1.csv', 'w').write({table!r})\n"
        "r = subprocess.run(['spe-export', '--json', 'request', 'outputs/table1.csv', '-q', '-j',\n"
        "                    'Counts per site for table 1 of the paper.'], capture_output=True, text=True)\n"
        "print('EXPORT', r.returncode, json.loads(r.stdout)['id'] if r.returncode == 0 else r.stderr)\n"
        "print('CELL-2')\n"), "CELL-2")
    m = re.search(r"EXPORT 0 (\S+)", exported)
    assert m, exported
    return m[1]


async def approve(browser, gateway_url: str, reviewer: str, password: str, rid: str, shots: Shots) -> str:
    """One reviewer logs in on the gateway's page and approves; returns the request's phase."""
    ctx = await browser.new_context()
    page = await ctx.new_page()
    try:
        await page.goto(f"{gateway_url}/review/")
        await keycloak_login(page, reviewer, password)
        await page.wait_for_url(re.compile(re.escape(gateway_url) + r"/review/.*"), timeout=60_000)
        await page.wait_for_selector(f"[data-testid=open-{rid}]", timeout=60_000)
        await page.click(f"[data-testid=open-{rid}]")
        await page.check("input[name=vote-0][value=approve]")
        await page.click("[data-testid=cast-vote]")
        await page.wait_for_selector("[data-testid=message]")
        await shots.take(page, f"review-{reviewer}")
        return await page.inner_text("[data-testid=phase]")
    finally:
        await ctx.close()


async def release_link(page, rid: str) -> str:
    """A cell runs ``spe-export status``: the approved request's download link."""
    status = await run_cell(page, (
        "import json, subprocess\n"
        f"v = json.loads(subprocess.run(['spe-export', '--json', 'status', {rid!r}], capture_output=True,"
        " text=True).stdout)\n"
        "print('LINK', v['phase'], v['download']['url'])\n"
        "print('CELL-3')\n"), "CELL-3")
    m = re.search(r"LINK Approved (\S+)", status)
    assert m, status
    return m[1]


async def download(ctx, url: str, saved: Path) -> list[str]:
    """The browser downloads the bundle at ``url`` to ``saved``; returns the names in it."""
    page = await ctx.new_page()
    await page.set_content(f'<a id="dl" href="{url}">bundle</a>')
    async with page.expect_download() as info:
        await page.click("#dl")
    await (await info.value).save_as(str(saved))
    await page.close()
    with zipfile.ZipFile(saved) as bundle:
        return bundle.namelist()


async def export_approved_and_downloaded(browser, ctx, page, gateway_url: str, reviewers: list[str], password: str,
                                         shots: Shots, saved: Path) -> None:
    """The export's round from the notebook on ``page``: ``spe-export request`` of EXPORT_TABLE, each
    reviewer approves on the gateway's page, the notebook reads the release link, the browser
    downloads the bundle to ``saved`` and the table in it is the one exported, byte for byte."""
    rid = await request_export(page, EXPORT_TABLE)
    await shots.take(page, "export-requested")
    phases = [await approve(browser, gateway_url, r, password, rid, shots) for r in reviewers]
    assert phases[-1] == "Approved", phases
    link = await release_link(page, rid)
    assert link.startswith(gateway_url), link
    names = await download(ctx, link, saved)
    with zipfile.ZipFile(saved) as bundle:
        table = next(n for n in names if n.endswith("table1.csv"))
        assert bundle.read(table).decode() == EXPORT_TABLE, names
    await shots.take(page, "downloaded")
