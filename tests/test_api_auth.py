"""API sign-in, tokens and errors: tokens expire and can be revoked, passwords and tokens are
stored only hashed, the session cookie is httponly and SameSite=Strict, every error is JSON
with a stable code. Sign-in throttling: tests/test_api_signin.py."""

from __future__ import annotations

from datetime import timedelta

from tests.api_support import PASSWORD, World, packs_dir, world

__all__ = ["packs_dir", "world"]


def test_login_gives_a_token_and_a_strict_httponly_cookie(world: World) -> None:
    answer = world.client.post(
        "/api/v1/auth/login", json={"username": "nurse", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    me = world.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "nurse" and me.json()["care_teams"] == ["cardio"]
    # The cookie alone signs the dashboard in.
    world.client.cookies.set("homecare_session", token)
    assert world.client.get("/api/v1/auth/me").json()["username"] == "nurse"
    world.client.cookies.clear()


def test_wrong_password_and_unknown_user_answer_alike(world: World) -> None:
    wrong = world.client.post("/api/v1/auth/login", json={"username": "nurse", "password": "x"})
    unknown = world.client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "code": "login_failed",
            "message": "unknown user or wrong password",
        }
    )


def test_tokens_expire(world: World) -> None:
    assert world.get("nurse", "/api/v1/auth/me").status_code == 200
    world.clock.advance(timedelta(days=1, seconds=1))
    expired = world.get("nurse", "/api/v1/auth/me")
    assert expired.status_code == 401 and expired.json()["code"] == "unauthorized"
    assert expired.headers["www-authenticate"] == "Bearer"


def test_logout_revokes_the_token(world: World) -> None:
    assert world.post("nurse", "/api/v1/auth/logout").status_code == 204
    assert world.get("nurse", "/api/v1/auth/me").status_code == 401


def test_passwords_and_tokens_are_stored_only_hashed(world: World) -> None:
    token = world.client.post(
        "/api/v1/auth/login", json={"username": "nurse", "password": PASSWORD}
    ).json()["token"]
    dump = "\n".join(
        str(row)
        for table in ("users", "api_tokens", "audit_log")
        for row in world.db.execute(f"SELECT * FROM {table}").fetchall()
    )
    for secret in (PASSWORD, token, *world.tokens.values()):
        assert secret not in dump
    hashes = [
        r[0]
        for r in world.db.execute(
            "SELECT password_hash FROM users WHERE password_hash IS NOT NULL"
        ).fetchall()
    ]
    assert hashes
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_every_error_is_json_with_a_stable_code(world: World) -> None:
    cases = [
        (world.client.get("/api/v1/nowhere"), 404, "not_found"),
        (world.client.put("/api/v1/auth/me"), 405, "method_not_allowed"),
        (world.client.get("/api/v1/auth/me"), 401, "unauthorized"),
        (world.client.post("/api/v1/auth/login", json={"username": 3}), 422, "invalid_request"),
        (world.client.post("/api/v1/auth/login", content=b"{not json"), 422, "invalid_request"),
    ]
    for answer, status, code in cases:
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["code"] == code and isinstance(body["message"], str) and body["message"]


def test_cookie_signed_changes_from_another_origin_are_refused(world: World) -> None:
    """SameSite=Strict does not cover a sibling host of the same site (a page on
    evil.hospital.example is same-site for rpm.hospital.example), so a change made with the
    session cookie must come from this origin — the JSON API's as well as the dashboard's forms
    (a body-less POST such as ack, revoke or logout needs no JSON content type, hence no CORS
    preflight). A bearer token is never sent by a browser on its own, so it is not checked."""
    signed_in = world.client.post(
        "/api/v1/auth/login", json={"username": "nurse", "password": PASSWORD}
    )
    token = signed_in.json()["token"]
    world.client.cookies.set("homecare_session", token)
    try:
        foreign = {"Origin": "https://evil.example"}
        refused = world.client.post("/api/v1/auth/logout", headers=foreign)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "cross_origin"
        by_referer = world.client.patch(
            "/api/v1/auth/me",
            json={"locale": "en"},
            headers={"Referer": "https://evil.example/page"},
        )
        assert by_referer.status_code == 403 and by_referer.json()["code"] == "cross_origin"
        assert world.client.get("/api/v1/auth/me").json()["locale"] == "fr-CA"
        # Reads with the cookie are not changes; the same origin may change.
        assert world.client.get("/api/v1/auth/me", headers=foreign).status_code == 200
        same = world.client.post("/api/v1/auth/logout", headers={"Origin": "http://testserver"})
        assert same.status_code == 204
    finally:
        world.client.cookies.clear()
    assert (
        world.client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )
    # A bearer token from any origin is not a browser's ambient credential.
    other = world.client.post(
        "/api/v1/auth/logout", headers={**world.headers("physician"), **foreign}
    )
    assert other.status_code == 204


def test_api_answers_are_never_cached(world: World) -> None:
    # Patient data, answers and errors alike: a shared browser or a proxy must not keep them.
    listed = world.get("nurse", "/api/v1/patients")
    assert listed.status_code == 200
    refused = world.client.get("/api/v1/patients")
    assert refused.status_code == 401
    for answer in (listed, refused):
        assert answer.headers["cache-control"] == "no-store"
