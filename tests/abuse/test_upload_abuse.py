"""Upload abuse over HTTP, with a real worker and clamd: refused clearly, or flagged.

Every case is one submission an attacker (or a confused client) could send. Each ends in
one of three ways, and the suite asserts which:

- refused: a 4xx with a JSON body saying what to fix, and nothing stored (no blob file,
  no proof row);
- flagged: accepted (202), then a verdict that routes to review (never auto-approved),
  every file scanned before its verdict and none served unless scanned CLEAN;
- sanitized: accepted because the file *name* was only a browser's whole path; the name
  is cut to its last part (the storage key is the server's). Refusing
  "C:\\Users\\me\\invoice.pdf" would refuse browsers that send whole paths; a '..' segment
  or a control or bidirectional-override character in a name is refused.

Budget (CI): about 40 cases on each database backend, submitted at once to a worker with
four threads; the whole file runs in well under 2 minutes (it prints its counts).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.models import Asset, Proof
from service.settings import Settings
from tests.scanning.samples import EICAR
from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER, funded_rift, multipart
from tests.support.summary import report
from tests.verification.proof_fixtures import (
    PE_HEADER,
    build_pdf,
    build_zip,
    encode_image,
    encrypt_pdf,
    photo,
    png_bomb,
    prose,
    zip_bomb,
)

pytestmark = pytest.mark.slow

VERDICTS_TIMEOUT_S = 90.0
LONG_AGO = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
BOUNDARY = "abuse-boundary"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)


@dataclass
class Case:
    name: str
    expect: str  # "refused", "flagged" or "sanitized"
    files: list[tuple[str, bytes, str]] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    # A hand-made body for malformed requests: (body, headers).
    raw: tuple[bytes, dict[str, str]] | None = None
    codes: set[str] = field(default_factory=set)  # some of the issues the verdict must name
    scan: str | None = None  # the scan status every file must end with


def pdf(**options: Any) -> bytes:
    return build_pdf([prose(1500), prose(1500)], created_at=LONG_AGO, **options)


def zipped(members: dict[str, bytes]) -> bytes:
    return build_zip(members)


def office(folder: str, part: str) -> bytes:
    manifest = b'<?xml version="1.0"?><Types/>'
    body = b"<doc>" + prose(400).encode() + b"</doc>"
    return zipped({"[Content_Types].xml": manifest, f"{folder}/document.xml": body, part: OLE})


def raw_multipart(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(name: str, content: bytes, filename: str | None = None, ctype: str = "") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    headers = f"Content-Disposition: {disposition}\r\n" + (
        f"Content-Type: {ctype}\r\n" if ctype else ""
    )
    return f"--{BOUNDARY}\r\n{headers}\r\n".encode() + content + b"\r\n"


NOTE = DELIVERY_NOTE.encode()
TEXT = "text/plain"
EICAR_IN_TWO_ZIPS = zipped(
    {"outer/readme.txt": NOTE, "middle.zip": zipped({"e.zip": zipped({"eicar.com": EICAR})})}
)

CASES: list[Case] = [
    # File names.
    Case("path traversal in a file name", "refused", files=[("../../etc/passwd.txt", NOTE, TEXT)]),
    Case(
        "windows path in a file name", "sanitized", files=[("C:\\Users\\x\\note.txt", NOTE, TEXT)]
    ),
    Case(
        "control characters in a file name",
        "refused",
        files=[("no\x00te\x1b[31m\u202e.txt", NOTE, TEXT)],
    ),
    Case("a 10,000-character file name", "refused", files=[("n" * 10_000 + ".txt", NOTE, TEXT)]),
    # Sizes and counts.
    Case("an empty file", "refused", files=[("empty.txt", b"", TEXT)]),
    Case(
        "a tiny file", "flagged", files=[("tiny.txt", b"ok, done.", TEXT)], codes={"file.too_small"}
    ),
    Case(
        "a file over the size limit",
        "refused",
        files=[("big.txt", b"a" * (2 * 1024 * 1024 + 1), TEXT)],
    ),
    Case("too many files", "refused", files=[(f"n{i}.txt", NOTE, TEXT) for i in range(11)]),
    Case("a huge text field", "refused", fields={"text": "x" * 20_001}),
    Case("a huge tracking number", "refused", fields={"tracking_number": "1Z" * 5_000}),
    # Malformed multipart.
    Case("a truncated multipart body", "refused", raw=raw_multipart(part("text", NOTE)[:-40])),
    Case(
        "a multipart body without its closing boundary",
        "refused",
        raw=raw_multipart(part("files", NOTE, "a.txt", TEXT)),
    ),
    Case(
        "a part without a name",
        "refused",
        raw=raw_multipart(
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhi\r\n--{BOUNDARY}--\r\n".encode()
        ),
    ),
    Case("an unknown form field", "refused", fields={"risk_score": "0"}),
    Case(
        "a multipart type without a boundary",
        "refused",
        raw=(part("text", NOTE), {"Content-Type": "multipart/form-data"}),
    ),
    # Part content types.
    Case(
        "a pdf declared as an image",
        "flagged",
        files=[("a.png", pdf(), "image/png")],
        codes={"file.type_mismatch"},
    ),
    Case(
        "a file part declared as text/html",
        "flagged",
        files=[("note.txt", NOTE, "text/html")],
        codes={"file.type_mismatch"},
    ),
    # Malware.
    Case(
        "eicar, plain", "flagged", files=[("eicar.txt", EICAR + b" " * 200, TEXT)], scan="INFECTED"
    ),
    Case(
        "eicar nested two zips deep",
        "flagged",
        files=[("e.zip", EICAR_IN_TWO_ZIPS, "application/zip")],
        scan="INFECTED",
    ),
    # Zip bombs and hostile archives.
    Case(
        "a flat zip bomb",
        "flagged",
        files=[("bomb.zip", zip_bomb(20 * 1024 * 1024), "application/zip")],
        codes={"zip.compression_ratio"},
    ),
    Case(
        "a nested zip bomb",
        "flagged",
        files=[("nest.zip", zipped({"inner.zip": zip_bomb(20 * 1024 * 1024)}), "application/zip")],
        codes={"zip.nested_archive"},
    ),
    Case(
        "a zip of many members",
        "flagged",
        files=[("many.zip", zipped({f"p{i}.txt": b"x" for i in range(1_001)}), "application/zip")],
        codes={"zip.too_many_members"},
    ),
    Case(
        "traversal names inside a zip",
        "flagged",
        files=[
            ("t.zip", zipped({"../../evil.sh": NOTE, "a/../../b.txt": NOTE}), "application/zip")
        ],
        codes={"zip.unsafe_path"},
    ),
    Case(
        "an executable inside a zip",
        "flagged",
        files=[("x.zip", zipped({"setup.exe": PE_HEADER + bytes(512)}), "application/zip")],
        codes={"zip.executable"},
    ),
    # PDFs.
    Case(
        "a pdf with javascript",
        "flagged",
        files=[("js.pdf", pdf(open_action_js="app.alert(1)"), "application/pdf")],
        codes={"pdf.javascript"},
    ),
    Case(
        "a pdf with a launch action",
        "flagged",
        files=[("l.pdf", pdf(launch_link=True), "application/pdf")],
        codes={"pdf.launch_action"},
    ),
    Case(
        "an encrypted pdf",
        "flagged",
        files=[("e.pdf", encrypt_pdf(pdf(), user_password="x"), "application/pdf")],
        codes={"pdf.encrypted"},
    ),
    # Polyglots.
    Case(
        "a pdf with a zip appended",
        "flagged",
        files=[("p.pdf", pdf() + zipped({"setup.exe": PE_HEADER + bytes(512)}), "application/pdf")],
        codes={"file.polyglot"},
    ),
    Case(
        "a jpeg with a zip appended",
        "flagged",
        files=[
            (
                "p.jpg",
                encode_image(photo(3), "JPEG", with_exif=True) + zipped({"a.txt": NOTE}),
                "image/jpeg",
            )
        ],
        codes={"file.polyglot"},
    ),
    # Images.
    Case(
        "a decompression-bomb image",
        "flagged",
        files=[("bomb.png", png_bomb(10_000, 10_000), "image/png")],
        codes={"image.decompression_bomb"},
    ),
    # Active content and disguised types.
    Case(
        "svg with script",
        "refused",
        files=[
            (
                "logo.svg",
                b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                "image/svg+xml",
            )
        ],
    ),
    Case(
        "svg with script named .png",
        "refused",
        files=[
            (
                "logo.png",
                b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>',
                "image/png",
            )
        ],
    ),
    Case(
        "html sent as a text file",
        "refused",
        files=[
            (
                "note.txt",
                b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
                TEXT,
            )
        ],
    ),
    Case(
        "script markup inside a text file",
        "flagged",
        files=[("note.txt", NOTE + b"<img src=x onerror=alert(1)>\n" + NOTE, TEXT)],
        codes={"file.active_markup"},
    ),
    Case(
        "html in the text field",
        "flagged",
        fields={"text": DELIVERY_NOTE + "<script>x()</script>"},
        codes={"text.injection"},
    ),
    Case(
        "an executable renamed .pdf",
        "refused",
        files=[("invoice.pdf", PE_HEADER + bytes(4096), "application/pdf")],
    ),
    Case(
        "an elf binary renamed .jpg",
        "refused",
        files=[("photo.jpg", b"\x7fELF\x02\x01\x01" + bytes(4096), "image/jpeg")],
    ),
    # Office macros.
    Case(
        "a docx with vbaProject.bin",
        "flagged",
        files=[("m.docx", office("word", "word/vbaProject.bin"), "application/octet-stream")],
        codes={"zip.macros"},
    ),
    Case(
        "an xlsx with vbaProject.bin",
        "flagged",
        files=[("m.xlsx", office("xl", "xl/vbaProject.bin"), "application/octet-stream")],
        codes={"zip.macros"},
    ),
    Case(
        "a pptx with vbaProject.bin",
        "flagged",
        files=[("m.pptx", office("ppt", "ppt/vbaProject.bin"), "application/octet-stream")],
        codes={"zip.macros"},
    ),
    Case(
        "an ole object inside a docx",
        "flagged",
        files=[
            ("o.docx", office("word", "word/embeddings/oleObject1.bin"), "application/octet-stream")
        ],
        codes={"zip.embedded_ole"},
    ),
]


def blob_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def proof_count(sessions: Any, rift_id: str) -> int:
    with sessions() as session:
        return int(session.scalar(sa.select(sa.func.count()).where(Proof.rift_id == rift_id)) or 0)


def send(client: Any, auth: Callable[..., dict[str, str]], rift_id: str, case: Case) -> Any:
    body, headers = case.raw or multipart(case.fields, case.files)
    return client.simulate_post(
        f"/api/rifts/{rift_id}/proofs", body=body, headers={**auth(SELLER), **headers}
    )


def wait_for_verdicts(client: Any, auth: Any, rift_ids: list[str]) -> dict[str, dict[str, Any]]:
    verdicts: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + VERDICTS_TIMEOUT_S
    while len(verdicts) < len(rift_ids) and time.monotonic() < deadline:
        for rift_id in rift_ids:
            if rift_id not in verdicts:
                status = client.simulate_get(
                    f"/api/rifts/{rift_id}/verification-status", headers=auth(SELLER)
                ).json
                if status["status"] in ("completed", "failed"):
                    verdicts[rift_id] = status
        time.sleep(0.2)
    missing = [r for r in rift_ids if r not in verdicts]
    assert not missing, f"{len(missing)} submissions got no verdict in {VERDICTS_TIMEOUT_S}s"
    return verdicts


def test_every_abusive_upload_is_refused_clearly_or_flagged(
    client, auth, settings: Settings, sessions, start_worker
) -> None:
    started = time.monotonic()
    start_worker(threads=4)
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    accepted: dict[str, Case] = {}

    # When each case is submitted
    for case in CASES:
        rift = funded_rift(client, auth)
        stored_before = blob_files(settings.blob_dir)
        result = send(client, auth, rift["id"], case)
        if result.status_code >= 500:
            outcomes["5xx"] += 1
            problems.append(f"{case.name}: {result.status_code} {result.text[:200]}")
            continue
        if 400 <= result.status_code < 500:
            outcomes["4xx"] += 1
            body = result.json if result.content_type.startswith("application/json") else None
            if case.expect != "refused":
                problems.append(f"{case.name}: refused ({result.status_code}) {result.text[:200]}")
            elif not isinstance(body, dict) or not any(
                isinstance(v, str) and v for v in body.values()
            ):
                problems.append(f"{case.name}: {result.status_code} without a JSON reason")
            # Then nothing of a refused request is stored. Only new files count: the
            # worker quarantines earlier cases' infected files meanwhile, and a file
            # moving out of the directory is not one this request left.
            left = blob_files(settings.blob_dir) - stored_before
            if left:
                names = sorted(p.name for p in left)
                problems.append(f"{case.name}: refused but a file was left behind: {names}")
            if proof_count(sessions, rift["id"]):
                problems.append(f"{case.name}: refused but a proof row was stored")
            continue
        if result.status_code != 202:
            problems.append(f"{case.name}: unexpected {result.status_code}")
            continue
        if case.expect == "refused":
            problems.append(f"{case.name}: accepted, expected a 4xx")
        accepted[rift["id"]] = case

    # Then every accepted one reaches a verdict that flags it (or only had its name cleaned)
    verdicts = wait_for_verdicts(client, auth, list(accepted))
    for rift_id, case in accepted.items():
        problems += judge(client, auth, sessions, settings, case, verdicts[rift_id])
        outcomes["flagged" if case.expect == "flagged" else "sanitized"] += 1

    elapsed = time.monotonic() - started
    backend = settings.database_url.split(":", 1)[0].split("+", 1)[0]
    line = (
        f"upload abuse ({backend}): {len(CASES)} cases, {outcomes['4xx']} refused (4xx), "
        f"{outcomes['flagged']} flagged, {outcomes['sanitized']} sanitized, "
        f"{outcomes['5xx']} 5xx, {elapsed:.1f} s"
    )
    print("\n" + line)
    report(line)
    assert outcomes["5xx"] == 0
    assert not problems, "\n".join(problems)


def judge(
    client: Any, auth: Any, sessions: Any, settings: Settings, case: Case, status: dict[str, Any]
) -> list[str]:
    problems: list[str] = []
    result = status["result"]
    if status["status"] != "completed" or result is None:
        return [f"{case.name}: status {status['status']}"]
    codes = {i["code"] for a in result["assets"] for i in a["issues"]}
    if case.expect == "flagged":
        if not result["route_to_review"] or result["auto_approved"]:
            problems.append(f"{case.name}: not flagged ({result['reasons']}, codes {codes})")
        if not case.codes <= codes:
            problems.append(f"{case.name}: expected {case.codes}, got {codes}")
    files = [a for a in result["assets"] if a["type"] == "FILE"]
    for asset in files:
        if case.scan is not None and asset["scan_status"] != case.scan:
            problems.append(f"{case.name}: scan {asset['scan_status']}, expected {case.scan}")
        if case.expect == "sanitized":
            name = asset["name"]
            if "/" in name or "\\" in name or any(ord(c) < 32 or c == "\u202e" for c in name):
                problems.append(f"{case.name}: stored name {name!r} is not safe")
        problems += served_only_when_clean(client, auth, sessions, case, asset)
    return problems


def served_only_when_clean(
    client: Any, auth: Any, sessions: Any, case: Case, asset: dict[str, Any]
) -> list[str]:
    """A file is downloadable only once scanned CLEAN; an INFECTED one is quarantined."""
    with sessions() as session:
        row = session.get_one(Asset, asset["asset_id"])
        scanned = row.scanned_at is not None
    download = client.simulate_get(f"/api/assets/{asset['asset_id']}/content", headers=auth(BUYER))
    problems = []
    if asset["scan_status"] == "CLEAN" and not scanned:
        problems.append(f"{case.name}: CLEAN without a scan")
    if asset["scan_status"] != "CLEAN" and download.status_code == 200:
        problems.append(f"{case.name}: a {asset['scan_status']} file was served")
    if asset["scan_status"] == "INFECTED" and not asset["quarantined"]:
        problems.append(f"{case.name}: infected but not quarantined")
    return problems
