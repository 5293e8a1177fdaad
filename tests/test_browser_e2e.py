"""End to end in a real headless Chromium (Playwright driving Debian's ``chromium``) against
``make demo``-style servers: the endpoint (``leadroute serve``) and the workbench (``leadroute
app``) on one demo workspace.

An analyst opens the app, moves a score threshold on Rules and sees the preview change, saves
the new version, reads it against the live policy, starts a 5% canary on Deploy — and the
endpoint then serves the new version. Screenshots of each step are kept as test artifacts
(``$LEADROUTE_TEST_ARTIFACTS``, default ``test-artifacts/`` in the checkout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.deployments import deploy
from pipelines.policies import list_policies
from pipelines.settings import Settings
from tests.conftest import REPO
from tests.serving_support import Server, api_key, demo_workspace, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CI"),
        reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it in CI)",
    ),
]
ARTIFACTS = Path(os.environ.get("LEADROUTE_TEST_ARTIFACTS", REPO / "test-artifacts"))
_ENTRY = "from leadroute.cli import main; main()"


@pytest.fixture
def workbench(tmp_path: Path) -> Iterator[tuple[Settings, str, Server]]:
    settings = demo_workspace(tmp_path / "ws")
    deploy(settings, "seed", reason="live before the analyst's change")
    endpoint = Server(settings, extra_args=("--no-model",)).start()
    port = free_port()
    env = {**os.environ, "LEADROUTE_HOME": str(settings.home)}
    log = (settings.home / "app.out").open("wb")
    app = subprocess.Popen(
        [sys.executable, "-c", _ENTRY, "app", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise TimeoutError((settings.home / "app.out").read_text())
        yield settings, url, endpoint
    finally:
        app.terminate()
        app.wait(timeout=30)
        log.close()
        endpoint.stop()


def test_threshold_change_save_canary_and_the_endpoint_serves_it(workbench: tuple[Settings, str, Server]) -> None:
    from playwright.sync_api import expect, sync_playwright

    settings, url, endpoint = workbench
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    before = set(list_policies(settings).filter(list_policies(settings)["name"] == "seed")["version"].to_list())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(120_000)
        expect.set_options(timeout=120_000)  # a cold preview replays and fits on a busy 2-core machine
        try:
            page.goto(f"{url}/rules")
            expect(page.get_by_text("Impact on history")).to_be_visible()
            metric = page.locator('[data-testid="stMetricValue"]').first
            expect(metric).not_to_have_text("")
            expect(page.get_by_text("(live)", exact=False).first).to_be_visible()  # previewed against the live policy
            shown_before = metric.inner_text()
            page.screenshot(path=str(ARTIFACTS / "1-rules-before.png"), full_page=True)

            # The first score cut-off (80: hot vs warm) is a react-aria range input.
            slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
            value_before = slider.input_value()
            slider.focus()
            slider.press("PageDown")  # one step of a tenth of the range: 80 → 70, one rerun
            expect(slider).not_to_have_value(value_before)
            # The preview reruns on the new threshold: the expected conversions change.
            expect(metric).not_to_have_text(shown_before)
            page.screenshot(path=str(ARTIFACTS / "2-rules-after-threshold.png"), full_page=True)

            page.get_by_role("button", name="Save as new version").click()
            expect(page.get_by_text("Registered", exact=False).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "3-rules-saved.png"), full_page=True)
            after = set(list_policies(settings).filter(list_policies(settings)["name"] == "seed")["version"].to_list())
            (new_version,) = after - before
            ref = f"seed@{new_version}"

            page.goto(f"{url}/deploy")
            expect(page.get_by_text("Live deployment")).to_be_visible()
            picker = page.get_by_role("combobox", name="Policy version")
            picker.click()
            page.keyboard.type(ref)
            page.keyboard.press("Enter")
            expect(picker).to_have_value(ref)
            page.get_by_role("button", name="Start canary").click()
            expect(page.get_by_text("canary at 5%", exact=False)).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "4-deploy-canary.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    headers = {"Authorization": f"Bearer {api_key(settings)}"}
    deadline = time.monotonic() + 30
    served: dict[str, object] = {}
    while time.monotonic() < deadline:
        served = httpx.get(f"{endpoint.url}/v1/deployment", headers=headers, timeout=10).json()
        arms = served.get("arms") or []
        if any(a["policy_version"] == new_version and a["arm"] == "canary" for a in arms):  # type: ignore[union-attr]
            break
        time.sleep(0.5)
    arms = served["arms"]
    assert any(a["policy"] == "seed" and a["policy_version"] == new_version and a["arm"] == "canary" for a in arms)  # type: ignore[union-attr]
    canary_share = next(a["share"] for a in arms if a["arm"] == "canary")  # type: ignore[union-attr]
    assert canary_share == pytest.approx(0.05)
    # …and routes live leads with it: some of a batch go to the canary version.
    leads = [
        {"lead_id": f"browser-{i}", "created_at": "2026-11-27T10:00:00Z", "score": 70 + i % 30} for i in range(400)
    ]
    answer = httpx.post(f"{endpoint.url}/v1/route/batch", json={"leads": leads}, headers=headers, timeout=30)
    assert answer.status_code == 200
    versions = {d["policy_version"] for d in answer.json()["decisions"]}
    assert new_version in versions
