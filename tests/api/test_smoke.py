from tests.support.flows import DELIVERY_NOTE, funded_rift, submit


def test_submission_answers_202_with_the_real_job_id(client, auth):
    rift = funded_rift(client, auth)
    result = submit(client, auth, rift["id"], fields={"tracking_number": "1Z999AA10123456784"},
                    files=[("note.txt", DELIVERY_NOTE.encode(), "text/plain")])
    assert result.status_code == 202, result.text
    job = client.simulate_get(f"/api/jobs/{result.json['verification_job_id']}",
                              headers=auth("seller-1"))
    assert job.status_code == 200
    assert job.json["state"] == "QUEUED"
