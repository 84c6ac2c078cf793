"""Request signers written in the tests from reference/exchanges.md, independent of bot/sandbox's verifiers.

Each returns the headers (and body) a client would send for the exchange's *own* API path; the integration
tests add the `/<exchange>` prefix to the URL only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime, timezone

import jwt


def kraken(key: str, secret: str, path: str, nonce: int, extra: str = "") -> tuple[dict[str, str], str]:
    body = f"nonce={nonce}" + (f"&{extra}" if extra else "")
    inner = hashlib.sha256(f"{nonce}{body}".encode()).digest()
    sign = hmac.new(base64.b64decode(secret), path.encode() + inner, hashlib.sha512).digest()
    headers = {
        "API-Key": key,
        "API-Sign": base64.b64encode(sign).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return headers, body


def binance(
    key: str, secret: str, params: str, timestamp_ms: int, recv_window: int | None = None
) -> tuple[dict[str, str], str]:
    query = (params + "&" if params else "") + (f"recvWindow={recv_window}&" if recv_window else "")
    query += f"timestamp={timestamp_ms}"
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return {"X-MBX-APIKEY": key}, f"{query}&signature={signature}"


def kucoin(
    key: str, secret: str, passphrase: str, method: str, endpoint: str, timestamp_ms: int, version: str = "2"
) -> dict[str, str]:
    what = f"{timestamp_ms}{method}{endpoint}".encode()
    sign = base64.b64encode(hmac.new(secret.encode(), what, hashlib.sha256).digest()).decode()
    phrase = passphrase
    if version in ("2", "3"):
        phrase = base64.b64encode(
            hmac.new(secret.encode(), passphrase.encode(), hashlib.sha256).digest()
        ).decode()
    return {
        "KC-API-KEY": key,
        "KC-API-SIGN": sign,
        "KC-API-TIMESTAMP": str(timestamp_ms),
        "KC-API-PASSPHRASE": phrase,
        "KC-API-KEY-VERSION": version,
        "Content-Type": "application/json",
    }


def okx_timestamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def okx(key: str, secret: str, passphrase: str, method: str, path: str, epoch_s: float) -> dict[str, str]:
    timestamp = okx_timestamp(epoch_s)
    what = f"{timestamp}{method}{path}".encode()
    return {
        "OK-ACCESS-KEY": key,
        "OK-ACCESS-SIGN": base64.b64encode(hmac.new(secret.encode(), what, hashlib.sha256).digest()).decode(),
        "OK-ACCESS-TIMESTAMP": timestamp,
        "OK-ACCESS-PASSPHRASE": passphrase,
        "Content-Type": "application/json",
    }


def gemini(key: str, secret: str, path: str, nonce: int) -> dict[str, str]:
    payload = base64.b64encode(json.dumps({"request": path, "nonce": str(nonce)}).encode()).decode()
    return {
        "X-GEMINI-APIKEY": key,
        "X-GEMINI-PAYLOAD": payload,
        "X-GEMINI-SIGNATURE": hmac.new(secret.encode(), payload.encode(), hashlib.sha384).hexdigest(),
        "Content-Type": "text/plain",
        "Cache-Control": "no-cache",
    }


def bitstamp(
    key: str,
    secret: str,
    host: str,
    path: str,
    timestamp_ms: int,
    body: str = "offset=0",
    nonce: str | None = None,
) -> tuple[dict[str, str], str]:
    nonce = nonce or str(uuid.uuid4())
    content_type = "application/x-www-form-urlencoded" if body else ""
    what = f"BITSTAMP {key}POST{host}{path}{content_type}{nonce}{timestamp_ms}v2{body}"
    headers = {
        "X-Auth": f"BITSTAMP {key}",
        "X-Auth-Signature": hmac.new(secret.encode(), what.encode(), hashlib.sha256).hexdigest(),
        "X-Auth-Nonce": nonce,
        "X-Auth-Timestamp": str(timestamp_ms),
        "X-Auth-Version": "v2",
    }
    if content_type:
        headers["Content-Type"] = content_type
    return headers, body


def coinbase_jwt(
    key_name: str,
    pem: str,
    method: str,
    host: str,
    path: str,
    now: int,
    iss: str = "cdp",
    lifetime: int = 120,
) -> dict[str, str]:
    claims = {"sub": key_name, "iss": iss, "nbf": now, "exp": now + lifetime, "uri": f"{method} {host}{path}"}
    token = jwt.encode(
        claims, pem, algorithm="ES256", headers={"kid": key_name, "nonce": secrets.token_hex()}
    )
    return {"Authorization": f"Bearer {token}"}
