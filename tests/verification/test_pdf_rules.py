"""PDF rules on real generated documents."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from proof_fixtures import (
    UPLOADED_AT,
    build_pdf,
    check_bytes,
    codes,
    deduction_codes,
    encrypt_pdf,
    prose,
)

LONG_AGO = UPLOADED_AT - timedelta(days=30)


def test_a_rich_old_multi_page_invoice_scores_full_marks(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO)
    result = check_bytes(tmp_path, pdf, declared_mime="application/pdf")
    assert result.sniffed_mime == "application/pdf"
    assert result.check.score == 100
    assert result.check.issues == ()
    assert result.facts["page_count"] == 2


def test_a_pdf_without_text_loses_50(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, build_pdf(["", ""], created_at=LONG_AGO))
    assert deduction_codes(result.check) == {"pdf.no_text"}
    assert result.check.score == 50
    assert not result.check.passed


def test_a_pdf_with_no_pages_loses_50(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, build_pdf([], created_at=LONG_AGO))
    assert deduction_codes(result.check) == {"pdf.no_text"}
    assert result.check.integrity_ok


def test_a_thin_single_page_loses_30(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, build_pdf([prose(300)], created_at=LONG_AGO))
    assert deduction_codes(result.check) == {"pdf.thin_single_page"}
    assert result.check.score == 70


def test_a_full_single_page_keeps_its_score(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, build_pdf([prose(1200)], created_at=LONG_AGO))
    assert result.check.score == 100


def test_a_pdf_created_just_before_upload_with_little_text_loses_20(tmp_path: Path) -> None:
    fresh = UPLOADED_AT - timedelta(minutes=3)
    result = check_bytes(tmp_path, build_pdf([prose(600), prose(200)], created_at=fresh))
    assert deduction_codes(result.check) == {"pdf.freshly_created"}
    assert result.check.score == 80


def test_a_fresh_pdf_with_plenty_of_text_is_not_penalised(tmp_path: Path) -> None:
    fresh = UPLOADED_AT - timedelta(minutes=3)
    result = check_bytes(tmp_path, build_pdf([prose(800), prose(800)], created_at=fresh))
    assert result.check.score == 100


def test_a_pdf_created_long_before_upload_is_not_fresh(tmp_path: Path) -> None:
    created = UPLOADED_AT - timedelta(minutes=11)
    result = check_bytes(tmp_path, build_pdf([prose(600), prose(200)], created_at=created))
    assert result.check.score == 100


def test_an_image_only_pdf_loses_15_on_top_of_no_text(tmp_path: Path) -> None:
    result = check_bytes(tmp_path, build_pdf(["", ""], created_at=LONG_AGO, with_image=True))
    assert deduction_codes(result.check) == {"pdf.no_text", "pdf.image_only"}
    assert result.check.score == 35


def test_images_beside_real_text_are_not_penalised(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, with_image=True)
    assert check_bytes(tmp_path, pdf).check.score == 100


def test_an_encrypted_pdf_is_an_issue_and_unreadable_text_loses_50(tmp_path: Path) -> None:
    pdf = encrypt_pdf(build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO), user_password="x")
    result = check_bytes(tmp_path, pdf)
    assert "pdf.encrypted" in codes(result.check)
    assert "pdf.no_text" in deduction_codes(result.check)


def test_an_owner_password_pdf_is_an_issue_but_its_text_is_read(tmp_path: Path) -> None:
    pdf = encrypt_pdf(build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO), user_password="")
    result = check_bytes(tmp_path, pdf)
    assert codes(result.check) == {"pdf.encrypted"}
    assert result.check.score == 100


def test_open_action_javascript_is_an_issue(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, open_action_js="app.alert(1)")
    result = check_bytes(tmp_path, pdf)
    assert codes(result.check) == {"pdf.javascript", "pdf.open_action"}


def test_a_page_auto_action_is_an_issue(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, page_auto_action_js="x()")
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.auto_action", "pdf.javascript"}


def test_a_launch_action_is_an_issue(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, launch_link=True)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.launch_action"}


def test_a_document_level_auto_action_is_an_issue(tmp_path: Path) -> None:
    catalog_aa = b"/AA << /WC << /S /JavaScript /JS (app.alert(1)) >> >>"
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, catalog_entries=catalog_aa)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.auto_action", "pdf.javascript"}


def test_document_javascript_in_the_names_tree_is_an_issue(tmp_path: Path) -> None:
    names = b"/Names << /JavaScript << /Names [(init) << /S /JavaScript /JS (x()) >>] >> >>"
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, catalog_entries=names)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.javascript"}


def test_a_form_field_auto_action_is_an_issue(tmp_path: Path) -> None:
    field_aa = b"/AA << /Fo << /S /Launch /F (cmd.exe) >> >>"
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, annotation_entries=field_aa)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.auto_action", "pdf.launch_action"}


def test_javascript_chained_after_a_harmless_link_action_is_found(tmp_path: Path) -> None:
    chained = b"/A << /S /URI /URI (https://example.com) /Next << /S /JavaScript /JS (x()) >> >>"
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, annotation_entries=chained)
    assert codes(check_bytes(tmp_path, pdf).check) == {"pdf.javascript"}


def test_an_open_action_that_only_shows_page_one_is_harmless(tmp_path: Path) -> None:
    pdf = build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, open_action_destination=True)
    assert check_bytes(tmp_path, pdf).check.issues == ()


def test_an_unparseable_pdf_fails_integrity(tmp_path: Path) -> None:
    garbage = b"%PDF-1.7\n" + b"\x00garbage" * 200
    result = check_bytes(tmp_path, garbage)
    assert result.sniffed_mime == "application/pdf"
    assert not result.check.integrity_ok
    assert "pdf.unreadable" in codes(result.check)
    assert not result.check.passed
