"""The reviewer page in headless Chromium: reviewers log in through a real Keycloak, see the
flagged cells, vote independently; the requester then downloads the released bundle."""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import NAMESPACE, RESEARCHER, WORKSPACE, memory_store, start_gateway
from .helpers import NOTES_TXT, SMALL_CELLS_CSV, png_with_text, run_cli, zip_members

pytestmark = [pytest.mark.egress, pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(600)]


@pytest.fixture
def review_gateway(hub, keycloak, tmp_path):
    from spe_dev.servers import free_port
    port = free_port()
    keycloak.allow_redirect(f"http://127.0.0.1:{port}/review/callback")
    gw = start_gateway(tmp_path, memory_store(), hub_api_url=hub.api_url, oidc_issuer=keycloak.issuer,
                       oidc_secret=keycloak.client_secret, port=port)
    try:
        yield gw
    finally:
        gw.server.stop()


async def login(browser, gw, keycloak, username: str):
    ctx = await browser.new_context(accept_downloads=True)
    page = await ctx.new_page()
    await page.goto(gw.url + "/review/")
    assert page.url.startswith(keycloak.issuer), page.url  # sent to Keycloak
    await page.fill("#username", username)
    await page.fill("#password", keycloak.user_password)
    await page.click("#kc-login")
    await page.wait_for_url(re.compile(re.escape(gw.url) + r"/review/.*"))
    return ctx, page


def submit(gw, hub, tmp_path, user: str, files: dict[str, bytes], why: str, **where: str) -> str:
    paths = []
    for name, data in files.items():
        p = tmp_path / user / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(str(p))
    token = hub.server_token(user, where.get("namespace", NAMESPACE), where.get("workspace", WORKSPACE))
    code, out, err = run_cli(gw, token, "request", *paths, "--justification", why, **where)
    assert code == 0, err
    rid = out.split()[2].rstrip(":")
    gw.wait_phase(rid, {"AwaitingReview"})
    return rid


async def test_reviewers_vote_in_the_browser_and_requester_downloads(browser, review_gateway, keycloak, hub,
                                                                   tmp_path):
    gw = review_gateway
    rid = submit(gw, hub, tmp_path, RESEARCHER,
                 {"table1.csv": SMALL_CELLS_CSV, "notes.txt": NOTES_TXT + b"Contact: rita@hospital.example\n",
                  "figure.png": png_with_text()},
                 "Table 1 and figure 2 of the paper.")
    # Ada reviews p1 and is herself a researcher of p2 (which other people review)
    own = submit(gw, hub, tmp_path, "rev-ada", {"mine.txt": NOTES_TXT}, "Ada's own results, for her talk.",
                 workspace="ws-ada", namespace="spe-p2")

    # --- first reviewer ---
    ctx_a, page = await login(browser, gw, keycloak, "rev-ada")
    assert await page.locator("[data-testid=who]").count() == 1, (page.url, await page.content())
    assert "rev-ada" in await page.inner_text("[data-testid=who]")
    assert await page.locator(f"[data-testid=open-{rid}]").count() == 1
    assert await page.locator(f"[data-testid=open-{own}]").count() == 0  # never her own request
    await page.click(f"[data-testid=open-{rid}]")
    await page.wait_for_url(f"**/review/r/{rid}")
    assert "Table 1 and figure 2" in await page.inner_text("[data-testid=justification]")
    # the small cell (3 patients) is highlighted, the safe ones are not
    flagged = page.locator("[data-testid=file-0] td[data-flagged]")
    assert await flagged.count() >= 1
    assert await flagged.first.inner_text() == "3"
    assert "flag-BLOCK" in await flagged.first.get_attribute("class")
    bg = await flagged.first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg != "rgba(0, 0, 0, 0)"  # painted
    # text with the flagged e-mail address, and the image shown inline
    mark = page.locator("[data-testid=file-1] mark[data-flagged]")
    assert "rita@hospital.example" in await mark.first.inner_text()
    img = page.locator("[data-testid=file-2] img.preview")
    assert await img.evaluate("i => i.complete && i.naturalWidth") == 2
    assert await page.locator("[data-testid=votes-hidden]").count() == 1
    # the blocked table cannot be approved
    assert await page.locator("input[name=vote-0][value=approve]").is_disabled()
    await page.screenshot(path=str(tmp_path / "review-page.png"), full_page=True)
    await page.check("input[name=vote-0][value=reject]")
    await page.fill("textarea[name=comment-0]", "Cell of 3 patients; ADA-PRIVATE-NOTE")
    await page.check("input[name=vote-1][value=approve]")
    await page.check("input[name=vote-2][value=approve]")
    await page.click("[data-testid=cast-vote]")
    await page.wait_for_selector("[data-testid=message]")
    assert "recorded" in await page.inner_text("[data-testid=message]")
    assert await page.inner_text("[data-testid=phase]") == "AwaitingReview"

    # a forged form (no CSRF token) is refused
    r = await ctx_a.request.post(f"{gw.url}/review/r/{rid}/vote", form={"vote-0": "reject"})
    assert r.status == 403
    # her own request: refused even by direct address
    await page.goto(f"{gw.url}/review/r/{own}")
    assert "cannot review your own" in await page.inner_text("[data-testid=error]")
    await ctx_a.close()

    # --- second reviewer: cannot see the first vote before casting his own ---
    ctx_b, page = await login(browser, gw, keycloak, "rev-bob")
    await page.goto(f"{gw.url}/review/r/{rid}")
    body = await page.inner_text("body")
    assert "ADA-PRIVATE-NOTE" not in body and "rev-ada" not in await page.inner_text("[data-testid=decisions]")
    assert await page.locator("[data-testid=votes-hidden]").count() == 1
    await page.check("input[name=vote-0][value=reject]")
    await page.fill("textarea[name=comment-0]", "Suppress cells below 10.")
    await page.check("input[name=visibility-0][value=public]")
    await page.check("input[name=vote-1][value=approve]")
    await page.check("input[name=vote-2][value=approve]")
    await page.click("[data-testid=cast-vote]")
    await page.wait_for_selector("[data-testid=message]")
    assert await page.inner_text("[data-testid=phase]") == "Approved"
    assert "ADA-PRIVATE-NOTE" in await page.inner_text("[data-testid=decisions]")  # visible after his vote
    await ctx_b.close()

    # --- the requester downloads the released bundle through its signed link ---
    async with httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {hub.server_token(RESEARCHER, NAMESPACE, WORKSPACE)}"},
                                 trust_env=False) as http:
        view = (await http.get(f"/api/v1/requests/{rid}")).json()
    assert view["phase"] == "Approved" and "ADA-PRIVATE-NOTE" not in str(view)
    assert view["comments"] == [{"round": 1, "file": 0, "vote": "reject", "comment": "Suppress cells below 10."}]
    ctx_r = await browser.new_context(accept_downloads=True)
    page = await ctx_r.new_page()
    await page.set_content(f'<a id="dl" href="{view["download"]["url"]}">bundle</a>')
    async with page.expect_download() as dl_info:
        await page.click("#dl")
    dl = await dl_info.value
    saved = tmp_path / "bundle.zip"
    await dl.save_as(str(saved))
    await ctx_r.close()
    members = zip_members(saved.read_bytes())
    assert "table1.csv" not in members  # rejected by both reviewers
    assert members["figure.png"] == png_with_text() and members["notes.txt"].startswith(NOTES_TXT)
    assert "check-record.json" in members
    assert gw.wait_phase(rid, {"Released"})
    acts = [e["action"] for e in gw.audit() if e.get("target") == f"{NAMESPACE}/{rid}"]
    assert acts.count("export.voted") == 2 and "export.downloaded" in acts
    viewers = {e["actor"] for e in gw.audit() if e["action"] == "export.viewed" and e["target"] == f"{NAMESPACE}/{rid}"}
    assert viewers == {"user:rev-ada", "user:rev-bob"}  # every look at a quarantined file is recorded
    assert [e for e in gw.audit() if e["action"] == "export.reviewer_login"]


async def test_login_without_reviewer_role_is_refused(browser, review_gateway, keycloak):
    ctx, page = await login(browser, review_gateway, keycloak, RESEARCHER)
    assert "does not hold the role output-reviewer" in await page.inner_text("[data-testid=error]")
    await ctx.close()
