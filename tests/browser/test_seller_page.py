"""A seller, a buyer and a stranger on the proof page, in Chromium, with real workers.

Budget: six flows, each expectation bounded by UI_TIMEOUT_MS and each flow by
FLOW_BUDGET_S; together about 50 s on two shared CPUs (measured 47 s of calls).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from service.db import SessionFactory
from service.models import Proof
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
from tests.browser.web_flows import (
    TRACKING,
    funded_rift,
    submit_over_http,
    unique_note,
    wait_for_verdict,
)
from tests.conftest import WorkerFactory
from tests.scanning.samples import EICAR, EICAR_SIGNATURE
from tests.support.flows import BUYER, SELLER, STRANGER

# The pages are under test, not the database: one backend (make run's SQLite) keeps the
# browser suite inside its budget; tests/web runs the same requests on both.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(FLOW_BUDGET_S),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def proofs_of(sessions: SessionFactory, rift_id: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).where(Proof.rift_id == rift_id)) or 0


def test_a_seller_submits_clean_proof_and_sees_it_approved_without_reloading(
    web_url: str,
    web_settings: Settings,
    start_worker: WorkerFactory,
    sessions: SessionFactory,
    open_page: OpenPage,
    artefacts_dir: Path,
    tmp_path: Path,
) -> None:
    start_worker(settings_override=web_settings)
    rift = funded_rift(web_url, web_settings, title="E-book <b>delivery</b>")
    page = open_page(PHONE)

    # Given the seller opened their sign-in link
    page.goto(link(web_url, f"/rifts/{rift['id']}", SELLER, web_settings))
    expect(page.get_by_role("heading", level=1)).to_have_text("E-book <b>delivery</b>")
    assert "#" not in page.url, "the token must leave the address bar"
    expect(page.locator("#verdict-headline")).to_have_text("No proof yet")

    # When they pick a file, type a tracking number and double-click submit
    note = tmp_path / "delivery-note.txt"
    note.write_bytes(unique_note(rift["id"]))
    page.get_by_label("Files", exact=True).set_input_files(note)
    page.get_by_label("Tracking number").fill(TRACKING)
    reloads: list[str] = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))
    page.get_by_role("button", name="Submit proof").dblclick()

    # Then the page turns to approved by itself, with the release date
    expect(page.locator("#verdict-headline")).to_have_text("Approved")
    expect(page.locator(".release")).to_contain_text("Automatic release")
    expect(page.locator(".asset").first).to_contain_text("Passed")
    expect(page.locator(".scan-clean")).to_have_text("No virus found")
    expect(page.locator("#announce")).to_have_text("Approved")
    assert reloads == [], f"the page navigated: {reloads}"
    assert proofs_of(sessions, rift["id"]) == 1, "a double click must submit once"
    screenshot(page, artefacts_dir, "seller-approved-phone")

    # And the clean file downloads as an attachment with its own bytes
    with page.expect_download() as download:
        page.get_by_role("link", name="Download delivery-note.txt").click()
    assert Path(download.value.path()).read_bytes() == note.read_bytes()


def test_before_its_script_runs_the_proof_form_sends_nothing_and_puts_nothing_in_the_address(
    web_url: str,
    web_settings: Settings,
    sessions: SessionFactory,
    open_page: OpenPage,
) -> None:
    rift = funded_rift(web_url, web_settings)
    page = open_page(PHONE)

    # Given a seller signed in whose page script has not arrived (slow, or failed)
    without_script(page, "rift.js")
    page.goto(link(web_url, f"/rifts/{rift['id']}", SELLER, web_settings))
    expect(page.get_by_role("heading", level=1)).to_have_text("Logo design")

    # When they type a tracking number and press Enter, or reach for the button
    # Then nothing is sent, the page stays, and the address holds nothing they typed
    assert_inert_without_its_script(page)
    assert "?" not in page.url, page.url
    assert proofs_of(sessions, rift["id"]) == 0

    # And once the script arrives, the form is theirs to use
    page.unroute("**/static/rift.js")
    page.reload()
    expect(page.get_by_role("button", name="Submit proof")).to_be_enabled()


def test_a_seller_sees_an_infected_file_flagged_with_the_reason(
    web_url: str,
    web_settings: Settings,
    start_worker: WorkerFactory,
    open_page: OpenPage,
    artefacts_dir: Path,
    tmp_path: Path,
) -> None:
    start_worker(settings_override=web_settings)
    rift = funded_rift(web_url, web_settings)
    page = open_page()
    page.goto(link(web_url, f"/rifts/{rift['id']}", SELLER, web_settings))

    eicar = tmp_path / "invoice.txt"
    eicar.write_bytes(EICAR)
    page.get_by_label("Files", exact=True).set_input_files(eicar)
    page.get_by_label("Written summary").fill(
        "Delivered the invoice by email on Monday; the buyer confirmed receipt the same day."
    )
    page.get_by_role("button", name="Submit proof").click()

    expect(page.locator("#verdict-headline")).to_have_text("A person will look at this proof")
    expect(page.locator(".reasons")).to_contain_text("the virus scanner flagged a file")
    infected = page.locator(".asset", has_text="invoice.txt")
    expect(infected.locator(".scan-infected")).to_have_text("Virus found: the file is quarantined")
    expect(infected).to_contain_text(EICAR_SIGNATURE)
    expect(infected).to_contain_text("upload a clean copy")
    expect(infected.get_by_role("link", name="Download invoice.txt")).to_have_count(0)
    # Under review the seller may send new proof from the same page.
    expect(page.get_by_role("heading", name="Send new proof")).to_be_visible()
    screenshot(page, artefacts_dir, "seller-infected")

    # And a clean resubmission from the same form is checked and approved, still no reload.
    clean = tmp_path / "invoice-clean.txt"
    clean.write_bytes(unique_note(rift["id"]))
    page.get_by_label("Files", exact=True).set_input_files(clean)
    page.get_by_role("button", name="Submit proof").click()
    expect(page.locator("#verdict-headline")).to_have_text("Approved")
    expect(page.locator(".asset", has_text="invoice-clean.txt")).to_contain_text("Passed")


def test_a_refused_submission_shows_the_servers_message_next_to_the_field(
    web_url: str,
    web_settings: Settings,
    start_worker: WorkerFactory,
    sessions: SessionFactory,
    open_page: OpenPage,
    artefacts_dir: Path,
    tmp_path: Path,
) -> None:
    start_worker(settings_override=web_settings)
    rift = funded_rift(web_url, web_settings)
    page = open_page(PHONE)
    page.goto(link(web_url, f"/rifts/{rift['id']}", SELLER, web_settings))

    expect(page.locator("#verdict-headline")).to_have_text("No proof yet")  # signed in
    # The first Tab stop skips to the content; Enter in a field submits, no mouse needed.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    tracking = page.get_by_label("Tracking number")
    tracking.fill("1Z" + "9" * 250)
    tracking.press("Enter")
    error = page.locator("#tracking_number-error")
    expect(error).to_have_text("tracking_number is longer than 200 characters")
    expect(tracking).to_have_attribute("aria-invalid", "true")
    expect(tracking).to_be_focused()
    screenshot(page, artefacts_dir, "seller-field-error-phone")

    # A file type the server refuses (415, no field) is shown next to the files.
    program = tmp_path / "setup.exe"
    program.write_bytes(
        b"MZ\x90\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode" + b"\x00" * 300
    )
    tracking.fill(TRACKING)
    page.get_by_label("Files", exact=True).set_input_files(program)
    page.get_by_role("button", name="Submit proof").click()
    expect(page.locator("#files-error")).to_contain_text("setup.exe")
    expect(page.locator("#tracking_number-error")).to_be_hidden()
    assert proofs_of(sessions, rift["id"]) == 0

    # Fixed, the same form goes through.
    note = tmp_path / "note.txt"
    note.write_bytes(unique_note(rift["id"]))
    page.get_by_label("Files", exact=True).set_input_files(note)
    page.get_by_role("button", name="Submit proof").click()
    expect(page.locator("#verdict-headline")).to_have_text("Approved")
    assert proofs_of(sessions, rift["id"]) == 1


def test_a_stranger_gets_the_same_404_page_as_for_a_missing_rift(
    web_url: str, web_settings: Settings, open_page: OpenPage, artefacts_dir: Path
) -> None:
    rift = funded_rift(web_url, web_settings)
    page = open_page()

    page.goto(link(web_url, f"/rifts/{rift['id']}", STRANGER, web_settings))
    expect(page.get_by_role("heading", level=1)).to_have_text("Nothing here")
    theirs = page.locator("main").inner_html()
    screenshot(page, artefacts_dir, "stranger-404")
    status = page.request.get(f"{web_url}/rifts/{rift['id']}").status

    page.goto(f"{web_url}/rifts/no-such-rift")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nothing here")
    assert page.locator("main").inner_html() == theirs
    assert status == page.request.get(f"{web_url}/rifts/no-such-rift").status == 404


def test_with_javascript_off_a_signed_in_buyer_sees_the_current_state(
    web_url: str,
    web_settings: Settings,
    start_worker: WorkerFactory,
    open_page: OpenPage,
    artefacts_dir: Path,
) -> None:
    start_worker(settings_override=web_settings)
    rift = funded_rift(web_url, web_settings)
    submit_over_http(
        web_url, web_settings, rift["id"], [("note.txt", unique_note(rift["id"]), "text/plain")]
    )
    wait_for_verdict(web_url, web_settings, rift["id"])

    # Signing in from the link needs the script once (the token is in the fragment) ...
    signed_in = open_page()
    signed_in.goto(link(web_url, f"/rifts/{rift['id']}", BUYER, web_settings))
    expect(signed_in.get_by_role("heading", level=1)).to_have_text("Logo design")
    cookies = signed_in.context.storage_state()

    # ... after which the server renders the current state for a browser without it.
    page = open_page(PHONE, javascript=False, storage_state=cookies)
    page.goto(f"{web_url}/rifts/{rift['id']}")
    expect(page.locator("#verdict-headline")).to_have_text("Approved")
    expect(page.locator(".meta")).to_contain_text("you are the buyer")
    expect(page.locator("#proof-form")).to_have_count(0)
    screenshot(page, artefacts_dir, "buyer-no-javascript-phone")

    # Without that cookie, the page says why it cannot show anything yet.
    bare = open_page(javascript=False)
    bare.goto(link(web_url, f"/rifts/{rift['id']}", BUYER, web_settings))
    expect(bare.get_by_role("heading", level=1)).to_have_text("Signing you in")
    expect(bare.locator("noscript")).to_have_count(1)
    screenshot(bare, artefacts_dir, "signin-no-javascript")
