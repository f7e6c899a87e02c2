"""The pages over HTTP: who sees what, the page cookie, conditional polling, strict headers."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

from service.domain.users import Role
from service.web.rendering import TEMPLATE_DIR
from tests.support.flows import BUYER, OPERATOR, SELLER, STRANGER, create_rift, funded_rift


def page_cookie(client, auth, user: str, role: Role = Role.USER) -> str:
    result = client.simulate_post("/session", headers=auth(user, role))
    assert result.status_code == 200, result.text
    cookie = SimpleCookie(result.headers["Set-Cookie"])["rift_page"]
    return cookie.value


def test_a_bearer_token_opens_an_httponly_strict_page_cookie(client, auth):
    result = client.simulate_post("/session", headers=auth(SELLER))

    assert result.status_code == 200
    header = result.headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Path=/" in header
    assert (
        re.search(r"Max-Age=(\d+)", header) and int(re.search(r"Max-Age=(\d+)", header)[1]) <= 600
    )


def test_no_cookie_without_a_bearer_token(client):
    result = client.simulate_post("/session")
    assert result.status_code == 401
    assert "Set-Cookie" not in result.headers


def test_the_page_cookie_renders_pages_but_is_no_bearer_token_for_the_api(client, auth):
    rift = funded_rift(client, auth)
    cookie = page_cookie(client, auth, SELLER)

    page = client.simulate_get(f"/rifts/{rift['id']}", cookies={"rift_page": cookie})
    api = client.simulate_get(
        f"/api/rifts/{rift['id']}", headers={"Authorization": f"Bearer {cookie}"}
    )
    transition = client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions",
        json={"to": "CANCELED"},
        cookies={"rift_page": cookie},
    )

    assert page.status_code == 200
    assert "you are the seller" in page.text
    assert api.status_code == 401
    assert transition.status_code == 401


def test_without_any_sign_in_the_page_is_the_sign_in_shell(client, auth):
    rift = funded_rift(client, auth)
    result = client.simulate_get(f"/rifts/{rift['id']}")
    assert result.status_code == 401
    assert "Signing you in" in result.text
    assert rift["title"] not in result.text


def test_a_strangers_page_is_byte_for_byte_the_missing_page(client, auth):
    rift = funded_rift(client, auth)
    theirs = client.simulate_get(f"/rifts/{rift['id']}", headers=auth(STRANGER))
    missing = client.simulate_get("/rifts/no-such-rift", headers=auth(STRANGER))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text == missing.text


def test_seller_text_is_escaped_in_the_page(client, auth):
    rift = create_rift(client, auth, title='<script>alert("x")</script>')
    result = client.simulate_get(f"/rifts/{rift['id']}", headers=auth(BUYER))
    assert result.status_code == 200
    assert '<script>alert("x")</script>' not in result.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in result.text


def test_pages_carry_a_strict_csp_and_no_store(client, auth):
    rift = funded_rift(client, auth)
    result = client.simulate_get(f"/rifts/{rift['id']}", headers=auth(SELLER))
    csp = result.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert result.headers["Cache-Control"] == "no-store"
    assert result.headers["X-Content-Type-Options"] == "nosniff"


def test_templates_hold_no_inline_script_style_or_handlers():
    for template in TEMPLATE_DIR.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert not re.search(r"\sstyle\s*=|<style", text), template.name


def test_progress_is_304_until_what_it_shows_changes(client, auth):
    rift = funded_rift(client, auth)
    url = f"/rifts/{rift['id']}/progress"
    first = client.simulate_get(url, headers=auth(SELLER))
    etag = first.headers["ETag"]

    again = client.simulate_get(url, headers={**auth(SELLER), "If-None-Match": etag})
    client.simulate_post(
        f"/api/rifts/{rift['id']}/transitions", json={"to": "CANCELED"}, headers=auth(BUYER)
    )
    changed = client.simulate_get(url, headers={**auth(SELLER), "If-None-Match": etag})

    assert first.status_code == 200
    assert 'data-final="true"' in first.text
    assert again.status_code == 304
    assert again.content == b""
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert "canceled" in changed.text


def test_only_the_seller_gets_the_submission_form(client, auth):
    rift = funded_rift(client, auth)
    seller = client.simulate_get(f"/rifts/{rift['id']}", headers=auth(SELLER))
    buyer = client.simulate_get(f"/rifts/{rift['id']}", headers=auth(BUYER))
    assert 'id="proof-form"' in seller.text
    assert 'id="proof-form"' not in buyer.text


def test_the_console_is_for_admins_only(client, auth):
    admin = client.simulate_get("/ops", headers=auth(OPERATOR, Role.ADMIN))
    user = client.simulate_get("/ops", headers=auth(SELLER))
    missing = client.simulate_get("/rifts/none", headers=auth(SELLER))
    assert admin.status_code == 200
    for heading in ("Review queue", "Queues", "Jobs", "Recent actions"):
        assert heading in admin.text
    assert user.status_code == 404
    assert user.text == missing.text


def test_the_page_cookie_is_secure_when_the_visitor_came_over_https(client, auth):
    plain = client.simulate_post("/session", headers=auth(SELLER))
    proxied = client.simulate_post(
        "/session", headers={**auth(SELLER), "X-Forwarded-Proto": "https"}
    )
    assert "Secure" not in plain.headers["Set-Cookie"]
    assert "Secure" in proxied.headers["Set-Cookie"]
