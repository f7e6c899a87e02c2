"""An operator in the console, in Chromium: dead jobs retried one by one and by filter.

Budget: one flow, each expectation bounded by UI_TIMEOUT_MS and the whole by FLOW_BUDGET_S;
about 25 s on two shared CPUs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import expect

from service.domain.users import Role
from service.settings import Settings
from tests.browser.conftest import (
    FLOW_BUDGET_S,
    PHONE,
    OpenPage,
    assert_inert_without_its_script,
    link,
    screenshot,
    without_script,
)
from tests.browser.web_flows import call, funded_rift, submit_over_http, unique_note
from tests.conftest import WorkerFactory
from tests.support.flows import OPERATOR, SELLER
from tests.support.processes import free_port, wait_for

# The pages are under test, not the database: one backend (make run's SQLite) keeps the
# browser suite inside its budget; tests/web runs the same requests on both.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(FLOW_BUDGET_S),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

DEAD_TIMEOUT_S = 30.0


def dead_scans(base: str, settings: Settings, rift_id: str) -> list[str]:
    listed = call(
        base,
        settings,
        OPERATOR,
        "GET",
        f"/api/admin/jobs?state=DEAD&actor=scan_asset&rift_id={rift_id}",
        role=Role.ADMIN,
    )
    return [job["id"] for job in listed["jobs"]]


def test_an_operator_retries_dead_jobs_and_sees_them_succeed(
    web_url: str,
    web_settings: Settings,
    start_worker: WorkerFactory,
    open_page: OpenPage,
    artefacts_dir: Path,
) -> None:
    # Given two scans that died: their worker could reach no clamd, and ran out of retries
    no_clamd = replace(web_settings, clamd_address=f"tcp://127.0.0.1:{free_port()}", max_retries=1)
    start_worker(["verification", "cleanup"], settings_override=web_settings)
    broken_scanner = start_worker(["scan"], settings_override=no_clamd)
    rift = funded_rift(web_url, web_settings, title="Photo set")
    submit_over_http(
        web_url,
        web_settings,
        rift["id"],
        [
            ("first.txt", unique_note(rift["id"]), "text/plain"),
            ("second.txt", unique_note(rift["id"]), "text/plain"),
        ],
    )
    wait_for(
        lambda: len(dead_scans(web_url, web_settings, rift["id"])) == 2,
        DEAD_TIMEOUT_S,
        "two dead scan jobs",
        interval_s=0.2,
    )
    first, second = dead_scans(web_url, web_settings, rift["id"])
    broken_scanner.stop()
    start_worker(["scan"], settings_override=web_settings)

    # (Before the console's script arrives, its buttons and forms do nothing: no decision
    # or retry sent, nothing typed put in the address.)
    unscripted = open_page()
    without_script(unscripted, "ops.js")
    unscripted.goto(link(web_url, "/ops", OPERATOR, web_settings, Role.ADMIN))
    expect(unscripted.get_by_role("heading", level=1)).to_have_text("Operator console")
    assert_inert_without_its_script(unscripted)
    assert "?" not in unscripted.url, unscripted.url
    unscripted.context.close()

    # When the operator opens the console from their link
    page = open_page()
    page.goto(link(web_url, "/ops", OPERATOR, web_settings, Role.ADMIN))
    expect(page.get_by_role("heading", level=1)).to_have_text("Operator console")
    expect(page.locator(f"#job-row-{first}")).to_contain_text("DEAD")
    expect(page.get_by_role("heading", name="Photo set")).to_be_visible()  # in review
    screenshot(page, artefacts_dir, "console-dead-jobs")

    # and retries the first from its page
    page.locator(f"#job-row-{first}").get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(first)
    expect(page.locator("#job-state")).to_have_text("DEAD")
    page.get_by_role("button", name="Retry this job").click()

    # Then it runs again and succeeds, and the retry is on record
    expect(page.locator("#job-state")).to_have_text("SUCCEEDED")
    expect(page.locator("#job-status-message")).to_have_text(f"Job {first[:8]} succeeded.")
    # by scanning the file for real this time (not skipping it as already marked unscannable)
    rescan = call(web_url, web_settings, OPERATOR, "GET", f"/api/jobs/{first}", role=Role.ADMIN)
    assert rescan["result"]["scan_status"] == "CLEAN", rescan
    assert not rescan["result"].get("skipped"), rescan
    page.reload()
    expect(page.locator("#actions-heading + .table-wrap")).to_contain_text(OPERATOR)
    expect(page.locator("#actions-heading + .table-wrap")).to_contain_text("retry job")
    screenshot(page, artefacts_dir, "console-job-succeeded")

    # And the other one goes by filter, after a confirmation that says how many
    page.goto(f"{web_url}/ops?filtered=1&state=DEAD&rift_id={rift['id']}#jobs")
    expect(page.locator("#jobs-total")).to_contain_text("1 job matches")
    page.get_by_role("button", name="Retry all 1 failed or dead jobs matching this filter…").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Retry 1 job matching this filter?")
    expect(dialog).to_be_focused()
    dialog.get_by_role("button", name="Retry 1 job").click()
    expect(page.locator("#retry-all-status")).to_contain_text("1 jobs are queued again")
    wait_for(
        lambda: (
            call(web_url, web_settings, OPERATOR, "GET", f"/api/jobs/{second}", role=Role.ADMIN)[
                "state"
            ]
            == "SUCCEEDED"
        ),
        DEAD_TIMEOUT_S,
        "the second scan to succeed",
        interval_s=0.2,
    )

    # Finally the operator asks the seller for new proof from the review queue
    page.set_viewport_size(PHONE)
    page.goto(f"{web_url}/ops#review")
    review = page.locator("article", has_text="Photo set")
    review.get_by_label("Reason (shown to the seller when you ask for new proof)").fill(
        "Both files failed the virus scan: send them again, please."
    )
    review.get_by_role("button", name="Ask for new proof").click()
    expect(review.get_by_role("status")).to_have_text("Done: the rift is now under review.")
    page.reload()  # the actions are rendered by the server
    expect(page.locator("#actions")).to_contain_text("retry jobs (1 jobs)")
    expect(page.locator("#actions")).to_contain_text("request new proof: Both files failed")
    screenshot(page, artefacts_dir, "console-actions-phone")

    # which the seller reads on their page, with the form to send it
    seller = open_page(PHONE)
    seller.goto(link(web_url, f"/rifts/{rift['id']}", SELLER, web_settings))
    expect(seller.locator(".request")).to_contain_text("Both files failed the virus scan")
    expect(seller.get_by_role("heading", name="Send new proof")).to_be_visible()
