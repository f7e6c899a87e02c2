"""Operator actions over the API: job search and paging, bulk retry after a confirmation,
review decisions, and the record of who did what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service.domain.clock import new_id, utcnow
from service.domain.job_search import MAX_COUNTED
from service.domain.jobs import new_job
from service.domain.queues import CLEAN_UP_RIFT, SCAN_ASSET, VERIFY_PROOF
from service.domain.users import Role
from service.models import Job, JobState, Rift, RiftEvent, RiftStatus
from tests.support.flows import OPERATOR, SELLER, funded_rift, submit

DAY = timedelta(days=1)


def jobs_with(sessions, *specs: tuple[JobState, object, timedelta]) -> list[str]:
    """Store jobs of (state, kind, age); return their ids in the order given."""
    now = utcnow()
    ids = []
    with sessions() as session, session.begin():
        for state, kind, age in specs:
            job = new_job(session, kind, subject_id=new_id(), now=now - age, ids=new_id)
            job.state = state
            ids.append(job.id)
    return ids


def admin(auth):
    return auth(OPERATOR, Role.ADMIN)


def test_the_job_list_filters_by_state_actor_and_age_with_total_and_pages(client, auth, sessions):
    dead_scan, _, old_dead, failed_verify, _ = jobs_with(
        sessions,
        (JobState.DEAD, SCAN_ASSET, timedelta(minutes=1)),
        (JobState.SUCCEEDED, SCAN_ASSET, timedelta(minutes=2)),
        (JobState.DEAD, SCAN_ASSET, 3 * DAY),
        (JobState.FAILED, VERIFY_PROOF, timedelta(minutes=3)),
        (JobState.DEAD, CLEAN_UP_RIFT, timedelta(minutes=4)),
    )
    url = "/api/admin/jobs"

    default = client.simulate_get(url, headers=admin(auth)).json
    scans = client.simulate_get(
        url, params={"state": "DEAD", "actor": SCAN_ASSET.actor_name}, headers=admin(auth)
    ).json
    old = client.simulate_get(url, params={"min_age_s": 86_400}, headers=admin(auth)).json
    first = client.simulate_get(url, params={"limit": 2}, headers=admin(auth)).json
    second = client.simulate_get(
        url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin(auth)
    ).json

    assert default["total"] == 4, "FAILED and DEAD when no state is given"
    assert [j["id"] for j in scans["jobs"]] == [dead_scan, old_dead]
    assert [j["id"] for j in old["jobs"]] == [old_dead]
    assert first["total"] == 4 and len(first["jobs"]) == 2
    assert first["jobs"][0]["id"] == dead_scan, "newest first"
    assert second["next_cursor"] is None
    paged = [j["id"] for page in (first, second) for j in page["jobs"]]
    assert sorted(paged) == sorted(j["id"] for j in default["jobs"])
    assert failed_verify in paged


def test_a_listing_counts_up_to_its_bound_and_says_when_more_match(client, auth, sessions):
    jobs_with(sessions, *[(JobState.DEAD, SCAN_ASSET, timedelta(seconds=1))] * MAX_COUNTED)
    url = "/api/admin/jobs"
    exact = client.simulate_get(url, params={"limit": 1}, headers=admin(auth)).json
    assert (exact["total"], exact["total_is_lower_bound"]) == (MAX_COUNTED, False)

    jobs_with(sessions, (JobState.FAILED, VERIFY_PROOF, timedelta(seconds=2)))
    bounded = client.simulate_get(url, params={"limit": 1}, headers=admin(auth)).json
    assert (bounded["total"], bounded["total_is_lower_bound"]) == (MAX_COUNTED, True)
    assert bounded["next_cursor"], "the pages go on past the count"


def test_pages_list_jobs_created_in_the_same_instant_once_each(client, auth, sessions):
    now = utcnow()
    with sessions() as session, session.begin():
        for _ in range(5):
            new_job(
                session, SCAN_ASSET, subject_id=new_id(), now=now, ids=new_id
            ).state = JobState.DEAD
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.simulate_get("/api/admin/jobs", params=params, headers=admin(auth)).json
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5


def test_a_bad_filter_is_422_naming_the_field(client, auth):
    for params, field in (
        ({"state": "LOST"}, "state"),
        ({"min_age_s": "soon"}, "min_age_s"),
        ({"cursor": "%%%"}, "cursor"),
    ):
        result = client.simulate_get("/api/admin/jobs", params=params, headers=admin(auth))
        assert result.status_code == 422, params
        assert result.json["field"] == field


def test_retry_all_needs_the_confirmed_count_and_records_the_action(
    client, auth, sessions, redis_conn
):
    dead = jobs_with(
        sessions,
        (JobState.DEAD, SCAN_ASSET, timedelta(minutes=1)),
        (JobState.DEAD, SCAN_ASSET, timedelta(minutes=2)),
        (JobState.FAILED, VERIFY_PROOF, timedelta(minutes=3)),
    )
    body = {"state": ["DEAD"], "actor": SCAN_ASSET.actor_name}

    stale = client.simulate_post(
        "/api/admin/jobs/retry", json={**body, "confirmed_count": 3}, headers=admin(auth)
    )
    refused = client.simulate_post(
        "/api/admin/jobs/retry", json={**body, "confirmed_count": 2}, headers=auth(SELLER)
    )
    done = client.simulate_post(
        "/api/admin/jobs/retry", json={**body, "confirmed_count": 2}, headers=admin(auth)
    )
    actions = client.simulate_get("/api/admin/actions", headers=admin(auth)).json["actions"]

    assert stale.status_code == 409
    assert "now matches 2" in stale.json["message"]
    assert refused.status_code == 403
    assert done.status_code == 202, done.text
    assert sorted(done.json["job_ids"]) == sorted(dead[:2])
    with sessions() as session:
        states = dict(session.execute(select(Job.id, Job.state).where(Job.id.in_(dead))).all())
    assert states[dead[0]] in (JobState.QUEUED, JobState.PENDING)
    assert states[dead[2]] is JobState.FAILED, "outside the filter: untouched"
    assert actions[0]["operator"] == OPERATOR
    assert actions[0]["action"] == "retry_jobs"
    assert actions[0]["detail"]["count"] == 2
    assert actions[0]["detail"]["filter"] == {"states": ["DEAD"], "actor": SCAN_ASSET.actor_name}


def test_retrying_one_job_is_recorded_with_who_and_from_what(client, auth, sessions, redis_conn):
    (job_id,) = jobs_with(sessions, (JobState.DEAD, SCAN_ASSET, timedelta(minutes=1)))

    result = client.simulate_post(f"/api/admin/jobs/{job_id}/retry", headers=admin(auth))
    actions = client.simulate_get(
        "/api/admin/actions", params={"job_id": job_id}, headers=admin(auth)
    ).json["actions"]

    assert result.status_code == 202
    assert [(a["action"], a["operator"], a["detail"]["from_state"]) for a in actions] == [
        ("retry_job", OPERATOR, "DEAD")
    ]


def under_review(client, auth, sessions) -> dict:
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], fields={"tracking_number": "1Z999AA10123456784"})
    assert submitted.status_code == 202
    with sessions() as session, session.begin():
        session.execute(
            update(Job).where(Job.rift_id == rift["id"]).values(state=JobState.SUCCEEDED)
        )
        stored = session.get(Rift, rift["id"])
        assert stored is not None
        # As the verdict would leave it: the checks done, a person to look.
        stored.status = RiftStatus.UNDER_REVIEW
    return client.simulate_get(f"/api/rifts/{rift['id']}", headers=admin(auth)).json


@pytest.mark.parametrize(
    ("decision", "status"),
    [("release", "RELEASED"), ("refund", "REFUNDED"), ("request_new_proof", "UNDER_REVIEW")],
)
def test_a_review_decision_moves_the_rift_and_is_logged(
    client, auth, sessions, redis_conn, decision, status
):
    rift = under_review(client, auth, sessions)

    result = client.simulate_post(
        f"/api/admin/rifts/{rift['id']}/decisions",
        json={
            "decision": decision,
            "reason": "Send the signed delivery receipt.",
            "version": rift["version"],
        },
        headers=admin(auth),
    )

    assert result.status_code == 200, result.text
    assert result.json["status"] == status
    with sessions() as session:
        last = session.scalars(
            select(RiftEvent).where(RiftEvent.rift_id == rift["id"]).order_by(RiftEvent.id.desc())
        ).first()
    assert last is not None
    assert (last.actor_role.value, last.actor_id) == ("ADMIN", OPERATOR)
    assert last.reason == "Send the signed delivery receipt."
    if decision == "request_new_proof":
        assert last.kind == "new_proof_requested"
        page = client.simulate_get(f"/rifts/{rift['id']}", headers=auth(SELLER)).text
        assert "An operator asked for new proof" in page
        assert "Send the signed delivery receipt." in page
    action = client.simulate_get("/api/admin/actions", headers=admin(auth)).json["actions"][0]
    assert (action["action"], action["rift_id"]) == (decision, rift["id"])


def test_a_decision_on_a_stale_view_is_409_and_asking_for_proof_needs_a_reason(
    client, auth, sessions, redis_conn
):
    rift = under_review(client, auth, sessions)
    url = f"/api/admin/rifts/{rift['id']}/decisions"

    stale = client.simulate_post(
        url, json={"decision": "release", "version": rift["version"] - 1}, headers=admin(auth)
    )
    no_reason = client.simulate_post(
        url, json={"decision": "request_new_proof"}, headers=admin(auth)
    )
    unknown = client.simulate_post(url, json={"decision": "shrug"}, headers=admin(auth))

    assert stale.status_code == 409
    assert (no_reason.status_code, no_reason.json["field"]) == (422, "reason")
    assert (unknown.status_code, unknown.json["field"]) == (422, "decision")


def test_the_job_page_shows_the_record_timeline_and_who_retried_it(
    client, auth, sessions, redis_conn
):
    (job_id,) = jobs_with(sessions, (JobState.DEAD, SCAN_ASSET, timedelta(minutes=1)))
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(last_error="<b>clamd</b> down"))
    client.simulate_post(f"/api/admin/jobs/{job_id}/retry", headers=admin(auth))

    page = client.simulate_get(f"/ops/jobs/{job_id}", headers=admin(auth))
    console = client.simulate_get("/ops", headers=admin(auth))

    assert page.status_code == 200, page.text
    assert "created (in the outbox)" in page.text
    assert "&lt;b&gt;clamd&lt;/b&gt; down" in page.text
    assert "retry job" in page.text and OPERATOR in page.text
    assert f"retry job by {OPERATOR} (it was DEAD)" in page.text, "the retry is on the timeline"
    assert console.status_code == 200
    assert "retry job" in console.text


def test_a_filter_for_finished_jobs_retries_nothing(client, auth, sessions, redis_conn):
    jobs_with(
        sessions,
        (JobState.SUCCEEDED, SCAN_ASSET, timedelta(minutes=1)),
        (JobState.DEAD, SCAN_ASSET, timedelta(minutes=2)),
    )
    page = client.simulate_get(
        "/ops", params={"filtered": "1", "state": "SUCCEEDED"}, headers=admin(auth)
    )
    result = client.simulate_post(
        "/api/admin/jobs/retry",
        json={"state": ["SUCCEEDED"], "confirmed_count": 1},
        headers=admin(auth),
    )
    assert page.status_code == 200
    assert 'id="retry-all"' not in page.text
    assert (result.status_code, result.json["field"]) == (422, "state")
