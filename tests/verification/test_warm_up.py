"""The fork server warms up before its first fork: a child loads nothing on first use.

Whatever a rule loads the first time it runs (scipy inside imagehash.phash, Pillow's
plugins, pypdf's filters, a codec) costs every child again, since each file is checked in
a fresh fork: a PNG cost 190 ms more in a child than in a warm process. So after the
server's preparation, checking a file of any kind must import no new module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image
from proof_fixtures import (
    PE_HEADER,
    build_pdf,
    build_zip,
    docx,
    encode_image,
    encrypt_pdf,
    photo,
    png_bomb,
    prose,
)

from service.verification.sniffing import ALLOWED_MIMES

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter that prepares as the server does before it forks, then
# checks each file and names the modules that appeared while it did.
PROBE = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path

from service.verification import budget_server
from service.verification.files import check_file
from service.verification.thresholds import VerificationThresholds

budget_server.prepare()
found = {}
for path in sorted(Path(sys.argv[1]).iterdir()):
    before = set(sys.modules)
    result = check_file(
        path,
        declared_mime=None,
        size_bytes=path.stat().st_size,
        uploaded_at=datetime.now(UTC),
        thresholds=VerificationThresholds(),
    )
    found[path.name] = {"mime": result.sniffed_mime, "new": sorted(set(sys.modules) - before)}
print(json.dumps(found))
"""


def proof_files() -> dict[str, bytes]:
    """A file of every accepted type, and the unusual paths through each type's rules."""
    pdf = build_pdf([prose(1500)])
    picture = photo(3)
    png = encode_image(picture, "PNG")
    return {
        "pdf": pdf,
        "pdf-image-only": build_pdf([prose(10)], with_image=True),
        "pdf-active": build_pdf(
            [prose(1500)], open_action_js="x()", launch_link=True, page_auto_action_js="y()"
        ),
        "pdf-destination": build_pdf([prose(1500)], open_action_destination=True),
        "pdf-encrypted": encrypt_pdf(pdf, user_password=""),
        "pdf-password": encrypt_pdf(pdf, user_password="secret"),
        "pdf-truncated": pdf[: len(pdf) // 2],
        "pdf-after-junk": b"junk" + pdf,
        "png": png,
        "png-gray": encode_image(picture.convert("L"), "PNG"),
        "png-palette": encode_image(picture.convert("P"), "PNG"),
        "png-rgba": encode_image(picture.convert("RGBA"), "PNG"),
        "png-tiny": encode_image(Image.new("RGB", (10, 10)), "PNG"),
        # Decodes to more than the full-decode budget: hashed from strips.
        "png-large": encode_image(Image.new("RGB", (4800, 4800), (10, 20, 30)), "PNG"),
        "png-bomb": png_bomb(20_000, 20_000),
        "png-truncated": png[:3000],
        "png-with-zip": png + build_zip({"a.txt": b"x"}),
        "png-with-pdf": png[:100] + b"%PDF-1.4",
        "jpeg": encode_image(picture, "JPEG"),
        "jpeg-exif": encode_image(picture, "JPEG", with_exif=True),
        "jpeg-truncated": encode_image(picture, "JPEG")[:3000],
        "gif": encode_image(picture, "GIF"),
        "webp": encode_image(picture, "WEBP"),
        "webp-exif": encode_image(picture, "WEBP", with_exif=True),
        "zip": build_zip({"a.txt": prose(300).encode(), "b.pdf": pdf}),
        "zip-stored": build_zip({"a.txt": prose(300).encode()}, compression=zipfile.ZIP_STORED),
        "zip-nested": build_zip({"inner.zip": build_zip({"x.exe": PE_HEADER})}),
        "docx": docx(),
        "docx-manifest-last": docx(manifest_first=False),
        "xlsx": build_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"}),
        "pptx": build_zip({"[Content_Types].xml": b"<Types/>", "ppt/presentation.xml": b"<p/>"}),
        "text": prose(800).encode(),
        "text-markup": b"hello <script>alert(1)</script> " + prose(300).encode(),
        "text-utf16": prose(300).encode("utf-16"),
        "text-empty": b"",
        "executable": PE_HEADER * 10,
        "html": b"<!doctype html><html><body>hi</body></html>",
    }


def test_after_the_warm_up_no_file_of_any_kind_loads_a_module(tmp_path: Path) -> None:
    # Given a file of every accepted type (named like stored blobs, and with extensions,
    # which Pillow reads to pick a plugin)
    folder = tmp_path / "files"
    folder.mkdir()
    for name, data in proof_files().items():
        (folder / name).write_bytes(data)
        (folder / f"{name}.{name.split('-')[0]}").write_bytes(data)

    # When a process prepared as the fork server checks each of them
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=120,
    )
    found = json.loads(probe.stdout)

    # Then every accepted type was among them, and none loaded anything
    assert {entry["mime"] for entry in found.values()} >= ALLOWED_MIMES
    loaded = {name: entry["new"] for name, entry in found.items() if entry["new"]}
    assert loaded == {}
