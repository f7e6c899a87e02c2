"""One file's inspection runs in a child process a hostile file cannot outgrow."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from PIL import Image
from proof_fixtures import UPLOADED_AT, build_pdf, codes, prose

from service.verification.budget import BudgetedInspector
from service.verification.files import FileCheck, check_file
from service.verification.thresholds import VerificationThresholds

DEFAULTS = VerificationThresholds()
INSPECTOR = BudgetedInspector()


def inspect(path: Path, thresholds: VerificationThresholds = DEFAULTS) -> FileCheck:
    return INSPECTOR.check_file(
        path,
        declared_mime=None,
        size_bytes=path.stat().st_size,
        uploaded_at=UPLOADED_AT,
        thresholds=thresholds,
    )


def test_within_budget_the_child_finds_what_the_rules_find_in_process(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(build_pdf([prose(1500)], open_action_js="x()"))
    in_process = check_file(
        path,
        declared_mime=None,
        size_bytes=path.stat().st_size,
        uploaded_at=UPLOADED_AT,
        thresholds=DEFAULTS,
    )
    assert inspect(path) == in_process
    assert codes(in_process.check) == {"pdf.javascript", "pdf.open_action"}


def test_an_inspection_past_the_wall_clock_budget_is_an_issue_not_a_hang(tmp_path: Path) -> None:
    # A PDF whose /Next array takes pypdf seconds to parse (4 s on an idle 2-core machine),
    # checked under a 1 s budget.
    harmless = b"<< /S /URI /URI (https://example.com) >> " * 300_000
    action = b"<< /S /URI /URI (x) /Next [" + harmless + b"] >>"
    path = tmp_path / "invoice.pdf"
    path.write_bytes(build_pdf([prose(1500)], annotation_entries=b"/A " + action))
    hurried = replace(DEFAULTS, file_inspection_wall_clock_s=1.0)
    started = time.monotonic()
    result = inspect(path, hurried)
    assert time.monotonic() - started < 2.0
    assert codes(result.check) == {"file.inspection_budget"}
    assert not result.check.passed
    # And the late child ends by itself (its alarm), well before it would have finished.
    assert INSPECTOR.server_pid is not None
    children = Path(f"/proc/{INSPECTOR.server_pid}/task/{INSPECTOR.server_pid}/children")
    deadline = started + 2.5
    while children.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children.read_text().strip() == ""


def test_an_inspection_past_the_memory_budget_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    # 3000x3000 RGB decodes to 36 MB in Pillow (4 bytes a pixel); the budget is 24 MiB.
    Image.new("RGB", (3000, 3000), (200, 120, 40)).save(path, "PNG")
    starved = replace(DEFAULTS, file_inspection_memory_bytes=24 * 1024 * 1024)
    result = inspect(path, starved)
    assert not result.check.passed
    assert codes(result.check) <= {"file.inspection_budget", "image.unreadable"}
    assert any(
        "MemoryError" in issue.message or "MiB" in issue.message for issue in result.check.issues
    )


def test_a_file_inspected_in_a_child_costs_milliseconds_of_overhead(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(prose(800).encode())
    inspect(path)  # the forkserver starts once per process
    started = time.monotonic()
    for _ in range(20):
        assert inspect(path).check.passed
    per_file_s = (time.monotonic() - started) / 20
    print(f"inspection in a child: {per_file_s * 1000:.1f} ms per small file")
    assert per_file_s < 0.5
