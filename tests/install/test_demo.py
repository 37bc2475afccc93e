"""`make demo`, end to end: its script runs on a cluster of its own (spe-dev home and ports of
the demo slot), and the URL and users it prints are driven in headless Chromium: rita logs in
through Keycloak, starts her workspace, a notebook lists /data and cannot write there, asks for
an export; rev-ada and rev-bob approve on the review page; she downloads the bundle. Then Ctrl-C
(SIGINT) stops it all. Screenshots go to .cache/artefacts/demo/<time>/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.hub.browser_steps import Shots, artefacts_dir, export_approved_and_downloaded, keycloak_login, look_at_data

pytestmark = [pytest.mark.install, pytest.mark.node, pytest.mark.timeout(2700)]

ROOT = Path(__file__).resolve().parents[2]
PORT_OFFSET = 300           # the demo's slot (tests/install/test_install.py lists them)
READY_TIMEOUT = 1800        # a fresh containerd imports five images; Keycloak; the ingest; JupyterLab
UI_TIMEOUT_MS = 300_000


class DemoRun:
    """scripts/demo.sh as `make demo` runs it, its output kept and read as it comes."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        self.lines: list[str] = []
        self.proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with self.log.open("w") as fh:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                fh.write(line)
                fh.flush()

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                self.reader.join(5)
                pytest.fail(f"make demo exited with {self.proc.returncode} before it was up:\n{self.text()[-8000:]}",
                            pytrace=False)
            time.sleep(1)
        pytest.fail(f"make demo printed no {pattern!r} in {timeout} s:\n{self.text()[-8000:]}", pytrace=False)

    def interrupt(self, timeout: float = 420) -> int:
        """Ctrl-C: SIGINT to the demo's process group, as a terminal sends it."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise


@pytest.fixture
def artefacts() -> Path:
    return artefacts_dir("demo")


@pytest.fixture
def demo(artefacts):
    # A short home: the kubelet binds unix sockets below it (at most 104 bytes).
    home = Path(tempfile.mkdtemp(prefix="spe-demo-", dir="/tmp")) / "home"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SPE_") and k != "KUBECONFIG"},
           "SPE_DEV_HOME": str(home), "SPE_DEV_PORT_OFFSET": str(PORT_OFFSET), "SPE_DEV_READY_TIMEOUT": "600"}
    run = DemoRun(env, artefacts / "make-demo.log")
    try:
        yield run
    finally:
        code = run.interrupt()
        run.reader.join(10)
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "spe_dev", "down", "--purge"], env=env,
                       capture_output=True, timeout=300)
        shutil.rmtree(home.parent, ignore_errors=True)
        assert code == 0, f"make demo exited with {code} on Ctrl-C:\n{run.text()[-4000:]}"
        assert "==> stopped" in run.text(), run.text()[-4000:]


async def test_make_demo_prints_a_url_that_tells_the_whole_story(demo, browser, artefacts):
    m = demo.wait_for_line(r"^  Open: +(http://\S+)/hub/workspaces", READY_TIMEOUT)
    hub_url = m[1]
    gateway_url = demo.wait_for_line(r"^  Reviews: +(http://\S+)/review/", 10)[1]
    password = demo.wait_for_line(r"password for each: (\S+)$", 10)[1]
    users = re.findall(r"^    (\S+) +(researcher|output reviewer)", demo.text(), re.M)
    researcher = next(u for u, role in users if role == "researcher")
    reviewers = [u for u, role in users if role == "output reviewer"]
    assert len(reviewers) == 2, users
    data = demo.wait_for_line(r"In a notebook: (/data/\S+) is the dataset", 10)[1]
    # progress was shown while it worked: the numbered steps, the dataset's ingest
    assert re.search(r"==> \[6/6\]", demo.text()) and "files processed" in demo.text(), demo.text()[-4000:]

    shots = Shots(artefacts)
    ctx = await browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = await ctx.new_page()
    try:
        # what a person does with the printed URL: the hub's login page, its one button, Keycloak
        await page.goto(f"{hub_url}/hub/workspaces")
        await shots.take(page, "hub-login")
        await page.get_by_text("Sign in with").click()
        await keycloak_login(page, researcher, password)
        await page.wait_for_url(f"{hub_url}/hub/workspaces", timeout=60_000)
        await shots.take(page, "workspaces")
        await page.click(f'a[href*="/hub/spawn/{researcher}/"]')
        await page.wait_for_url(re.compile(rf".*/user/{researcher}/.*/lab.*"), timeout=UI_TIMEOUT_MS)
        await page.wait_for_selector(".jp-Launcher", timeout=UI_TIMEOUT_MS)
        await shots.take(page, "jupyterlab")
        await page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
        await page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=120_000)
        await look_at_data(page, data)
        await shots.take(page, "notebook-data-read-only")

        await export_approved_and_downloaded(browser, ctx, page, gateway_url, reviewers, password, shots,
                                             artefacts / "bundle.zip")
    except BaseException:
        await page.screenshot(path=str(artefacts / "failed.png"), full_page=True)
        raise
    finally:
        await ctx.close()
