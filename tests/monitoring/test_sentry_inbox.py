"""The local Sentry endpoint reads envelopes exactly as the SDK writes them."""

from __future__ import annotations

import gzip

import pytest
from sentry_sdk.envelope import Envelope, Item

from .sentry_inbox import SentryInbox, parse_envelope
from .stack import http


def sdk_envelope() -> bytes:
    envelope = Envelope(headers={"event_id": "abc"})
    envelope.add_event({"message": "first\nline", "level": "error"})
    envelope.add_item(Item(payload=b"a\nb", type="attachment"))
    return envelope.serialize()


def test_parses_the_sdks_own_envelopes_items_and_payloads_with_newlines() -> None:
    parsed = parse_envelope(sdk_envelope())
    assert parsed.headers == {"event_id": "abc"}
    assert [item.type for item in parsed.items] == ["event", "attachment"]
    assert parsed.items[0].json()["message"] == "first\nline"
    assert parsed.items[1].payload == b"a\nb"


def test_parses_items_without_a_length_up_to_the_newline() -> None:
    data = b'{}\n{"type":"event"}\n{"message":"x"}\n{"type":"session"}\n{"sid":"1"}'
    parsed = parse_envelope(data)
    assert [(i.type, i.json()) for i in parsed.items] == [
        ("event", {"message": "x"}),
        ("session", {"sid": "1"}),
    ]


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_receives_envelopes_over_http_compressed_or_not(
    encoding: str, sentry_inbox: SentryInbox
) -> None:
    body = sdk_envelope()
    if encoding == "gzip":
        body = gzip.compress(body)
    url = f"http://127.0.0.1:{sentry_inbox.port}/api/1/envelope/"
    assert http("POST", url, body=body, headers={"Content-Encoding": encoding})[0] == 200
    assert sentry_inbox.events() == [{"message": "first\nline", "level": "error"}]
    assert b"first\\nline" in sentry_inbox.raw()


def test_refuses_what_is_not_an_envelope(sentry_inbox: SentryInbox) -> None:
    base = f"http://127.0.0.1:{sentry_inbox.port}/api/1"
    assert http("POST", f"{base}/store/", body=b"{}")[0] == 400
    assert (
        http("POST", f"{base}/envelope/", body=b"not gzip", headers={"Content-Encoding": "gzip"})[0]
        == 400
    )
    assert len(sentry_inbox.rejected) == 2 and sentry_inbox.envelopes == []
