"""Virus scanning end to end: HTTP submission, real scan and verification workers, real clamd."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from service.blobs import LocalBlobStore
from service.domain.clock import new_id, utcnow
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.domain.verification import check_proof, record_scan
from service.inspection import build_inspector
from service.models import Asset, ScanStatus
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.jobs.conftest import (
    EICAR,
    SMALL_STREAM_MAX_KIB,
    blob_files,
    events,
    quarantined_keys,
    scan_job_ids,
    status,
    stored_content,
    stored_keys,
    wait_for_job,
    wait_for_verdict,
)
from tests.support.brokers import BROKERS
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("broker", BROKERS, indirect=True)]

# deploy/clamav/signatures names them; clamd adds ".UNOFFICIAL" to signatures of our own.
EICAR_SIGNATURE = "Rift.Test.EICAR.UNOFFICIAL"
CLAMAV_TESTFILE_SIGNATURE = "Rift.Test.ClamAVTestFile.UNOFFICIAL"
CLAMAV_TESTFILES = Path("/usr/share/clamav-testfiles")
# The scanner streams to clamd in 64 KiB INSTREAM chunks.
INSTREAM_CHUNK_BYTES = 64 * 1024


def storage_keys(sessions, asset_ids: list[str]) -> dict[str, str]:
    with sessions() as session:
        return {i: session.get_one(Asset, i).storage_key for i in asset_ids}


def system_events(client, auth, rift_id: str) -> list[dict]:
    return [e for e in events(client, auth, rift_id) if e["actor_role"] == "SYSTEM"]


def zip_of(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("blob_store", ["local", "s3"], indirect=True)
def test_an_eicar_file_is_quarantined_named_in_the_status_and_sends_the_proof_to_review(
    client, auth, settings: Settings, sessions, start_worker
):
    assert len(EICAR) == 68
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], files=[("eicar.txt", EICAR, "text/plain")])
    assert submitted.status_code == 202, submitted.text
    [asset_id] = submitted.json["asset_ids"]
    key = storage_keys(sessions, [asset_id])[asset_id]
    assert key in stored_keys(settings)

    # The scan finishes first; verification then still reads the (quarantined) file.
    start_worker(["scan"])
    scan_job = wait_for_job(client, auth, scan_job_ids(sessions, [asset_id])[asset_id])
    assert scan_job["state"] == "SUCCEEDED"
    assert status(client, auth, rift["id"])["result"] is None, "no verdict before the checks"
    start_worker(["verification"])
    verdict = wait_for_verdict(client, auth, rift["id"])

    assert verdict["rift_status"] == "UNDER_REVIEW"
    assert verdict["result"]["route_to_review"] is True
    assert "scan.infected" in [r["code"] for r in verdict["result"]["reasons"]]
    [asset] = verdict["result"]["assets"]
    assert asset["scan_status"] == "INFECTED"
    assert asset["scan_signature"] == EICAR_SIGNATURE
    assert asset["quarantined"] is True
    assert asset["mime_type"] == "text/plain"
    assert "file.missing" not in [i["code"] for i in asset["issues"]]
    assert key not in stored_keys(settings)
    assert quarantined_keys(settings) == {key}
    assert stored_content(settings, key) == EICAR
    quarantined = [e for e in events(client, auth, rift["id"]) if e["kind"] == "asset_quarantined"]
    assert len(quarantined) == 1
    assert EICAR_SIGNATURE in quarantined[0]["reason"]
    assert quarantined[0]["actor_role"] == "SYSTEM"


def test_infected_content_inside_zips_pdfs_and_across_chunk_boundaries_is_infected(
    client, auth, settings: Settings, sessions, start_worker
):
    samples = {
        "eicar.zip": (zip_of("eicar.com", EICAR), EICAR_SIGNATURE),
        # EICAR straddling the first 64 KiB INSTREAM chunk boundary of a plain-text file.
        "padded.txt": (
            b"a" * (INSTREAM_CHUNK_BYTES - 30) + EICAR + b"\n" + b"b" * 1000,
            EICAR_SIGNATURE,
        ),
        "clam.zip": ((CLAMAV_TESTFILES / "clam.zip").read_bytes(), CLAMAV_TESTFILE_SIGNATURE),
        "clam.pdf": ((CLAMAV_TESTFILES / "clam.pdf").read_bytes(), CLAMAV_TESTFILE_SIGNATURE),
    }
    start_worker()
    rift = funded_rift(client, auth)

    submitted = submit(
        client,
        auth,
        rift["id"],
        files=[
            (name, content, "application/octet-stream") for name, (content, _) in samples.items()
        ],
    )

    assert submitted.status_code == 202, submitted.text
    verdict = wait_for_verdict(client, auth, rift["id"])
    assert verdict["rift_status"] == "UNDER_REVIEW"
    found = {
        a["name"]: (a["scan_status"], a["scan_signature"]) for a in verdict["result"]["assets"]
    }
    assert found == {name: ("INFECTED", signature) for name, (_, signature) in samples.items()}
    assert blob_files(settings.blob_dir) == set()
    assert len(blob_files(settings.quarantine_dir)) == len(samples)
    kinds = [e["kind"] for e in events(client, auth, rift["id"])]
    assert kinds.count("asset_quarantined") == len(samples)


def test_a_clean_file_waits_for_its_scan_and_the_verdict_is_decided_once(
    client, auth, settings: Settings, sessions, start_worker
):
    rift = funded_rift(client, auth)
    submitted = submit(
        client,
        auth,
        rift["id"],
        fields={"tracking_number": "1Z999AA10123456784"},
        files=[("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")],
    )
    [file_id, _tracking_id] = submitted.json["asset_ids"]

    # Given only the verification pool runs, the checks finish but the verdict waits.
    start_worker(["verification"])
    verify_job = wait_for_job(client, auth, submitted.json["verification_job_id"])
    assert verify_job["state"] == "SUCCEEDED"
    assert verify_job["result"]["waiting_for_scans"] == [file_id]
    assert verify_job["result"]["verdict"] is None
    waiting = status(client, auth, rift["id"])
    assert (waiting["status"], waiting["result"]) == ("processing", None)
    assert waiting["rift_status"] == "PROOF_SUBMITTED"
    assert system_events(client, auth, rift["id"]) == []

    # When the scan pool comes up, the scan is the last to finish and decides.
    start_worker(["scan"])
    verdict = wait_for_verdict(client, auth, rift["id"])
    file_asset = next(a for a in verdict["result"]["assets"] if a["asset_id"] == file_id)
    assert file_asset["scan_status"] == "CLEAN"
    assert file_asset["scan_signature"] is None
    assert verdict["result"]["route_to_review"] is False
    decided = system_events(client, auth, rift["id"])
    assert [e["kind"] for e in decided] == ["proof_verified"]

    # Then redelivered verification and scan messages decide nothing a second time.
    blobs = LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    rules = VerdictRules(settings.thresholds(), ReleasePolicy())
    inspect = build_inspector(
        blobs, LicenseKeyVault(settings.license_key_secret.encode()), settings.thresholds()
    )
    proof_id = submitted.json["proof_id"]
    for _ in range(2):
        _, again = check_proof(sessions, proof_id, inspect, rules, clock=utcnow, ids=new_id)
        assert again is None
        _, rescanned = record_scan(
            sessions,
            file_id,
            ScanStatus.CLEAN,
            None,
            rules,
            on_infected=lambda _asset: pytest.fail("a clean file was quarantined"),
            clock=utcnow,
            ids=new_id,
        )
        assert rescanned is None
    assert system_events(client, auth, rift["id"]) == decided
    assert status(client, auth, rift["id"])["result"] == verdict["result"]


def test_files_over_clamds_stream_limit_or_whose_blob_vanished_are_error_and_go_to_review(
    client, auth, settings: Settings, sessions, start_worker, small_stream_clamd
):
    over_limit = (DELIVERY_NOTE.encode() * 1000)[: SMALL_STREAM_MAX_KIB * 1024 + 4096]
    assert len(over_limit) <= settings.max_file_bytes
    rift = funded_rift(client, auth)
    submitted = submit(
        client,
        auth,
        rift["id"],
        files=[
            ("big.txt", over_limit, "text/plain"),
            ("lost.txt", DELIVERY_NOTE.encode(), "text/plain"),
        ],
    )
    big_id, lost_id = submitted.json["asset_ids"]
    (settings.blob_dir / storage_keys(sessions, [lost_id])[lost_id]).unlink()

    small_limit = replace(settings, clamd_address=str(small_stream_clamd.tcp_address))
    start_worker(settings_override=small_limit)

    verdict = wait_for_verdict(client, auth, rift["id"])
    assert verdict["rift_status"] == "UNDER_REVIEW"
    assert "scan.error" in [r["code"] for r in verdict["result"]["reasons"]]
    assets = {a["asset_id"]: a for a in verdict["result"]["assets"]}
    assert [a["scan_status"] for a in assets.values()] == ["ERROR", "ERROR"]
    assert "size limit exceeded" in assets[big_id]["scan_signature"]
    assert "stored file is gone" in assets[lost_id]["scan_signature"]
    assert not any(a["quarantined"] for a in assets.values())
    # Verdicts about the files, not an outage: neither scan is retried.
    jobs = scan_job_ids(sessions, [big_id, lost_id])
    big_job = wait_for_job(client, auth, jobs[big_id])
    assert (big_job["state"], big_job["attempts"]) == ("SUCCEEDED", 1)
    lost_job = wait_for_job(client, auth, jobs[lost_id])
    assert (lost_job["state"], lost_job["attempts"]) == ("FAILED", 1)
