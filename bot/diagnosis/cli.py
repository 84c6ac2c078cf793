"""`keymedic diagnose --exchange ID`: test a key from the command line.

The credentials come as JSON on stdin (`{"api_key": …, "api_secret": …, "passphrase": …}`), never as
arguments, which other users of the machine can read in the process list. The diagnosis is printed as JSON
on stdout. Exit status: 0 every item passed, 1 some item failed, 2 KeyMedic could not tell (exchange
unavailable, items it cannot settle, bad input, unsupported exchange, rate limited).

This module is imported whenever the `keymedic` parser is built, so heavy imports stay inside `run`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.types.credentials import Credentials
    from bot.types.diagnosis import Diagnosis

__all__ = ["add_arguments", "run"]

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_UNDECIDED = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exchange", required=True, help="exchange id or name, e.g. kraken, coinbase, binance_us, okx"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help="total time allowed (default: KEYMEDIC_DIAGNOSIS_DEADLINE, 8 s)",
    )
    parser.epilog = (
        'Reads {"api_key": ..., "api_secret": ..., "passphrase": ...} as JSON on stdin (add '
        '"key_version" for KuCoin if it isn\'t 2). Exit 0: all passed, 1: something fails, 2: could not tell.'
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from bot.diagnosis.errors import DiagnosisError
    from bot.exchange_ids import normalize_exchange
    from bot.types.credentials import Credentials

    exchange = normalize_exchange(args.exchange)
    if exchange is None:
        print(f"error: unknown exchange {args.exchange!r}", file=sys.stderr)
        return EXIT_UNDECIDED
    if sys.stdin.isatty():
        print("Paste the key as JSON, then press Ctrl-D:", file=sys.stderr)
    raw = sys.stdin.read()
    # Never echo the input back: it holds the secret.
    try:
        data = json.loads(raw)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        print(
            f"error: stdin is not valid JSON{where}. Expected "
            '{"api_key": "...", "api_secret": "...", "passphrase": "..."}.',
            file=sys.stderr,
        )
        return EXIT_UNDECIDED
    if not isinstance(data, dict):
        print("error: stdin must be a JSON object with api_key and api_secret", file=sys.stderr)
        return EXIT_UNDECIDED
    try:
        credentials = Credentials.from_mapping(data)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED

    try:
        diagnosis = asyncio.run(_diagnose(exchange, credentials, args.deadline))
    except DiagnosisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED
    print(json.dumps(diagnosis.to_dict(), indent=2))
    if diagnosis.failing():
        return EXIT_FAILED
    return EXIT_PASSED if diagnosis.all_passed else EXIT_UNDECIDED


async def _diagnose(exchange: str, credentials: Credentials, deadline_s: float | None) -> Diagnosis:
    from bot.diagnosis.service import diagnose
    from bot.exchanges._http import aclose_shared_client

    try:
        return await diagnose(exchange, credentials, deadline_s=deadline_s)
    finally:
        await aclose_shared_client()
