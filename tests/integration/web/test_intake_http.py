"""The credential intake over real HTTP (aiohttp app, httpx client), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from bot.store import orm, services
from bot.store.db import Database, sqlite_file_of
from bot.web import form
from tests.integration.web.conftest import World

pytestmark = pytest.mark.integration

SECRET = "SECRET-9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f"
PASSPHRASE = "PASSPHRASE-1f2e3d4c5b6a"
API_KEY = "APIKEY-abcdef0123456789-wxyz"
SECURITY_HEADERS = {
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as http:
        yield http


def post(client: httpx.Client, world: World, body: dict[str, object], **headers: str) -> httpx.Response:
    return client.post(f"{world.url}/intake/credentials", json=body, headers=headers)


def counts(database: Database) -> tuple[int, int]:
    """(credential rows, used intake tokens)."""
    with database.engine.connect() as connection:
        credentials = connection.scalar(select(func.count()).select_from(orm.credentials))
        used = connection.scalar(
            select(func.count())
            .select_from(orm.intake_tokens)
            .where(orm.intake_tokens.c.used_at.is_not(None))
        )
    return int(credentials or 0), int(used or 0)


def assert_secure_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "default-src 'none'" in response.headers["content-security-policy"]


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_secure_headers(response)
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == code and error["message"]
    for marker in (SECRET, PASSPHRASE):
        assert marker not in response.text
    return error


def test_a_posted_key_comes_back_as_a_reference_that_decrypts_to_it(
    world: World, client: httpx.Client, database: Database
) -> None:
    token = world.token(world.okx_wallet)
    body = {"token": token, "wallet_id": world.okx_wallet, "api_key": API_KEY, "api_secret": SECRET}

    response = post(client, world, {**body, "passphrase": PASSPHRASE})

    assert response.status_code == 201, response.text
    assert_secure_headers(response)
    answer = response.json()
    assert answer["status"] == "received" and answer["reference"].startswith("pc_")
    assert answer["api_key_masked"] == "****wxyz" and answer["wallet_id"] == world.okx_wallet
    assert SECRET not in response.text and PASSPHRASE not in response.text
    loaded = services.load_pending_credential(world.uow, answer["reference"], wallet_id=world.okx_wallet)
    assert loaded.api_key == API_KEY and loaded.api_secret.reveal() == SECRET
    assert loaded.passphrase is not None and loaded.passphrase.reveal() == PASSPHRASE
    assert counts(database) == (1, 1)


def test_the_html_form_round_trip(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token()

    page = client.post(f"{world.url}/intake/form", data={"token": token})

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == form.PAGE_CSP
    assert_secure_headers(page)
    assert 'type="password"' in page.text and f'value="{token}"' in page.text and "Kraken" in page.text
    assert counts(database) == (0, 0), "showing the form does not use the token"

    fields = {"token": token, "wallet_id": str(world.kraken_wallet), "api_key": "", "api_secret": SECRET}
    again = client.post(f"{world.url}/intake/credentials", data=fields, headers={"Accept": "text/html"})
    assert again.status_code == 422 and 'role="alert"' in again.text and "API key is missing" in again.text
    assert 'aria-invalid="true"' in again.text and SECRET not in again.text
    assert again.headers["content-security-policy"] == form.PAGE_CSP

    done = client.post(
        f"{world.url}/intake/credentials",
        data={**fields, "api_key": API_KEY},
        headers={"Accept": "text/html"},
    )
    assert done.status_code == 201 and "Go back to the chat" in done.text and "pc_" in done.text
    assert SECRET not in done.text
    assert counts(database) == (1, 1)

    used = client.post(f"{world.url}/intake/form", data={"token": token})
    assert used.status_code == 409 and "already submitted" in used.text


def test_a_form_link_keeps_its_token_out_of_every_request_line(world: World, client: httpx.Client) -> None:
    from bot.intake import intake_form_url

    token = world.token()
    link = intake_form_url(world.url, token)
    # The token is in the fragment: httpx, like a browser, sends only the path.
    assert link == f"{world.url}/intake/form#token={token}"
    assert httpx.URL(link).raw_path == b"/intake/form"
    opener = client.get(link)
    assert opener.status_code == 200 and token not in opener.text
    assert opener.headers["content-security-policy"] == form.OPENER_CSP
    assert 'action="/intake/form"' in opener.text and "location.hash" in opener.text
    # An old-style query link is not honoured: its token already sits in some proxy's log.
    queried = client.get(f"{world.url}/intake/form", params={"token": token})
    assert queried.status_code == 200 and 'type="password"' not in queried.text
    # What the opener's script posts gets the form.
    page = client.post(f"{world.url}/intake/form", data={"token": token})
    assert page.status_code == 200 and 'type="password"' in page.text


@pytest.mark.parametrize("token", ["", "it_" + "x" * 43, "<script>"])
def test_a_bad_form_link_gets_a_page_saying_so(world: World, client: httpx.Client, token: str) -> None:
    page = client.post(f"{world.url}/intake/form", data={"token": token})
    assert page.status_code == 404 and "not valid" in page.text and "<script>" not in page.text
    assert_secure_headers(page)


def test_an_expired_token_is_refused(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token()
    world.clock.now += timedelta(minutes=10)
    body = {"token": token, "wallet_id": world.kraken_wallet, "api_key": API_KEY, "api_secret": SECRET}
    assert_refused(post(client, world, body), 410, "token_expired")
    assert counts(database) == (0, 0)


def test_a_reused_token_is_refused(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token()
    body = {"token": token, "wallet_id": world.kraken_wallet, "api_key": API_KEY, "api_secret": SECRET}
    assert post(client, world, body).status_code == 201
    assert_refused(post(client, world, {**body, "api_secret": SECRET + "2"}), 409, "token_used")
    assert counts(database) == (1, 1)


def test_another_users_token_is_refused(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token()
    body = {"token": token, "wallet_id": world.kraken_wallet, "api_key": API_KEY, "api_secret": SECRET}
    assert_refused(post(client, world, body, **{"X-Test-User": str(world.other_user_id)}), 403, "wrong_user")
    assert counts(database) == (0, 0)
    assert post(client, world, body, **{"X-Test-User": str(world.user_id)}).status_code == 201


def test_a_token_for_another_wallet_is_refused(
    world: World, client: httpx.Client, database: Database
) -> None:
    token = world.token(world.kraken_wallet)
    body = {"token": token, "wallet_id": world.okx_wallet, "api_key": API_KEY, "api_secret": SECRET}
    error = assert_refused(post(client, world, {**body, "passphrase": PASSPHRASE}), 403, "wrong_wallet")
    assert error["field"] == "wallet_id"
    assert counts(database) == (0, 0)


def test_a_missing_field_is_named(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token(world.okx_wallet)
    body = {"token": token, "wallet_id": world.okx_wallet, "api_key": API_KEY, "api_secret": SECRET}
    error = assert_refused(post(client, world, body), 422, "missing_field")
    assert error["field"] == "passphrase"
    assert counts(database) == (0, 0)


def test_malformed_json_is_refused(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token()
    raw = json.dumps({"token": token, "wallet_id": world.kraken_wallet, "api_secret": SECRET})[:-2]
    response = client.post(
        f"{world.url}/intake/credentials", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_refused(response, 400, "malformed_body")
    assert counts(database) == (0, 0)


def test_other_media_types_are_refused(world: World, client: httpx.Client, database: Database) -> None:
    response = client.post(
        f"{world.url}/intake/credentials", content=SECRET, headers={"Content-Type": "text/plain"}
    )
    assert_refused(response, 415, "unsupported_media_type")
    assert counts(database) == (0, 0)


def test_a_megabyte_body_is_refused(world: World, client: httpx.Client, database: Database) -> None:
    token = world.token()
    body = {
        "token": token,
        "wallet_id": world.kraken_wallet,
        "api_key": API_KEY,
        "api_secret": SECRET * 30_000,
    }
    assert len(json.dumps(body)) > 1_000_000
    assert_refused(post(client, world, body), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"api_secret": "'
        for _ in range(64):
            yield b"x" * 16_384
        yield b'"}'

    response = client.post(
        f"{world.url}/intake/credentials", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_refused(response, 413, "payload_too_large")
    assert counts(database) == (0, 0)
    # The token survived: the real key still goes through.
    ok = {**body, "api_secret": SECRET}
    assert post(client, world, ok).status_code == 201


def test_health_and_unknown_paths_answer_json_with_the_headers(world: World, client: httpx.Client) -> None:
    health = client.get(f"{world.url}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert_secure_headers(health)
    missing = client.get(f"{world.url}/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert_secure_headers(missing)
    wrong_method = client.get(f"{world.url}/intake/credentials")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert_secure_headers(wrong_method)


def _raw_database_bytes(database: Database) -> bytes:
    """Every byte the database keeps for KeyMedic's tables, as stored."""
    path = sqlite_file_of(database.engine.url)
    if path is not None:
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with database.engine.connect() as connection:
        connection.execute(text("CHECKPOINT"))  # write the shared buffers to the relation files
        files = connection.scalars(
            text(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') "
                "UNION SELECT pg_relation_filepath(c.reltoastrelid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.reltoastrelid <> 0"
            )
        ).all()
        chunks = [connection.scalar(text("SELECT pg_read_binary_file(:f)"), {"f": f}) for f in files if f]
    return b"".join(bytes(chunk) for chunk in chunks if chunk)


def test_the_database_never_holds_a_posted_secret_in_clear(
    world: World, client: httpx.Client, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = world.token(world.okx_wallet)
    base = {"token": token, "wallet_id": world.okx_wallet, "api_key": API_KEY, "api_secret": SECRET}
    assert post(client, world, base).status_code == 422  # refused: no passphrase
    assert post(client, world, {**base, "passphrase": PASSPHRASE}).status_code == 201
    client.post(f"{world.url}/intake/form", data={"token": token})

    raw = _raw_database_bytes(database)
    # aiohttp writes an access line after the response went out: wait for the last one.
    deadline = time.monotonic() + 5.0
    while "POST /intake/form 409" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)

    assert len(raw) > 10_000, "read the real files"
    for marker in (SECRET, PASSPHRASE, token):
        assert marker.encode() not in raw
        assert marker.encode().hex().encode() not in raw
    assert API_KEY.encode() not in raw, "the key itself is stored only encrypted and masked"
    # The server's log lines (the test's own httpx client logs the URLs it requests, token included).
    server_log = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))
    )
    for marker in (SECRET, PASSPHRASE, token, API_KEY):
        assert marker not in server_log
    assert "POST /intake/credentials 201" in server_log, "the access log still says what happened"
    assert "POST /intake/form 409" in server_log


def test_concurrent_submissions_of_one_token_store_one_credential(world: World, database: Database) -> None:
    token = world.token()
    body = {"token": token, "wallet_id": world.kraken_wallet, "api_key": API_KEY, "api_secret": SECRET}

    def submit_once(_: int) -> int:
        with httpx.Client(timeout=30.0) as http:
            return http.post(f"{world.url}/intake/credentials", json=body).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(submit_once, range(6)))

    assert statuses == [201, 409, 409, 409, 409, 409]
    assert counts(database) == (1, 1)
