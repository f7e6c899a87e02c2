"""The package face loads only what a caller asks for."""

from __future__ import annotations

import json
import subprocess
import sys

RULE_MODULES = (
    "service.verification.pdf",
    "service.verification.images",
    "service.verification.zips",
    "service.verification.urls",
    "service.verification.probe",
    "service.verification.files",
    "pypdf",
    "PIL.Image",
)


def loaded_after(statement: str) -> set[str]:
    """Run `statement` in a fresh interpreter; return which rule modules it loaded."""
    script = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps([m for m in {list(RULE_MODULES)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_importing_sniff_mime_loads_no_pdf_image_zip_or_url_rules() -> None:
    assert loaded_after("from service.verification.sniffing import sniff_mime") == set()
    assert loaded_after("from service.verification import sniff_mime") == set()


def test_a_name_from_the_face_loads_its_module_on_first_use() -> None:
    loaded = loaded_after("from service.verification import check_url")
    assert "service.verification.urls" in loaded
    assert "pypdf" not in loaded


def test_the_face_names_every_export_from_its_module() -> None:
    import service.verification as face

    for name in face.__all__:
        assert getattr(face, name) is not None
