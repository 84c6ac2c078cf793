"""Find API keys, secrets, passphrases and private keys in free text, and take them out (DESIGN §5).

A secret pasted into a chat must not reach NLU, the tracker store, a log or a ticket. The channels call
`redact` on every incoming message before Rasa sees it; what comes back names the kinds of secret found
(`Redaction.kinds`), never their values, so the user can be told to revoke the key.

What counts as a secret, most specific first (shapes from reference/exchanges.md and `bot.sandbox.scenarios`):

| kind | shape |
|---|---|
| `private_key` | a `-----BEGIN … PRIVATE KEY-----` block (Coinbase's EC key), literal `\\n` or cut off |
| `coinbase_api_key` | `organizations/<uuid>/apiKeys/<uuid>` |
| `kraken_secret` | 88 base64 characters ending in `==` (64 bytes) |
| `kraken_api_key` | 56 base64 characters |
| `binance_key` | 64 letters and digits (Binance's key and secret look alike) |
| `gemini_api_key` | `account-` and at least 12 letters and digits |
| `kucoin_api_key` | 24 hex digits |
| `uuid_secret` | a UUID (KuCoin's secret, OKX's key) |
| `hex_secret` | 32 or more hex digits (OKX's secret, Gate.io's key and secret) |
| `token` | any other run of 24+ key characters with letters and digits that is not made of words |
| `passphrase` | 10-64 characters with upper and lower case, a digit and a symbol (OKX's passphrase rule) |
| `form_token` | KeyMedic's own one-time credential-form token, `it_` and 43 url-safe characters |
| `api_key`, `api_secret`, `passphrase` | the value after `key=`, `secret:`, `"secret": "…"`, `password is` |

Precision matters as much as recall: a user must be able to write "my kraken key stopped working", quote an
amount, a date, an order id or a file name, paste a blockchain address or transaction hash, or send back the
opaque references and form links KeyMedic gave them, and have the message pass untouched. So these pass:
numbers; runs made of words and numbers (`kraken_ledgers_2024-01-01.csv`); runs shorter than 24 characters
(Kraken's `OQCLML-BW3P3-BUCMWZ` transaction ids); `0x` addresses and hashes; Bitcoin addresses whose checksum
holds; KeyMedic's own `pc_…` references and model files (`keymedic-<fingerprint>.tar.gz`, in Rasa's log);
links made of words; and a UUID, hex string or long token right after a word that names a transaction ("tx",
"transaction hash", "order", "deposit address", "commit", …), also as a URL's path (`/tx/<hash>`). Anything
past the first 100,000 characters of a message is cut off whole (as `unscanned`, which names no secret: the
channels refuse a message that long before it gets here) rather than scanned. The cost is linear in the
text: the overlap checks are binary searches, so a paste full of key-like runs costs no more per character
than prose.

Not exempt, because each was seen carrying a key: a value after "ref"/"reference" (a user calls their key a
reference as often as an order), and anything inside a URL — every path segment, query value and fragment is
judged like free text (a key pasted into a request URL, `/keys/<key>/status`, `?apiKey=…`). KeyMedic's own
`it_…` form tokens are redacted too (`form_token`): each is a one-time bearer credential for a user's
credential form, so it must not reach a transcript or a log line (issue 15).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["REDACTED", "KINDS", "Finding", "Redaction", "find_secrets", "redact", "redact_value"]

REDACTED: Final = "[redacted secret]"

KINDS: Final[tuple[str, ...]] = (
    "private_key",
    "coinbase_api_key",
    "kraken_secret",
    "kraken_api_key",
    "binance_key",
    "gemini_api_key",
    "kucoin_api_key",
    "uuid_secret",
    "hex_secret",
    "token",
    "api_key",
    "api_secret",
    "passphrase",
    "form_token",
    "unscanned",
)

# Long enough that ids people quote (Kraken's 19-character transaction ids, 20-digit order numbers) pass;
# shorter than every secret shape that has no pattern of its own (Gemini's 28-character secret is the
# shortest). A sturdier guard than length is the "made of words" test below.
_MIN_TOKEN: Final = 24
# A run of random base62 characters carries about 5.95 bits per character; hex 4; English-like identifiers
# well under 3.5 on their own letters. Measured on the sandbox keys and the NLU corpus (tests/unit).
_MIN_TOKEN_ENTROPY: Final = 3.5
# Bybit keys are 18 characters and Crypto.com keys and secrets 22 (docs/exchanges/bybit.md, reference §10):
# shorter than `_MIN_TOKEN`, so a plain base62 run of that length is a secret only when it mixes upper case,
# lower case and digits, chops into short random pieces, and is neither words nor named as an id.
_SHORT_KEY: Final = re.compile(r"[A-Za-z0-9]{18,23}")
_MAX_TEXT: Final = 100_000  # a chat message is far shorter; bounds the work on a hostile paste

_UUID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KEY_CHAR: Final = r"A-Za-z0-9+/_\-"

# A private key block: the header, then (when there is one) everything up to the footer; without a footer,
# the base64 body that follows, with real or literal (`\n`, as in a JSON string) line breaks.
_PEM_HEADER: Final = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_PEM_FOOTER: Final = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_PEM_BODY: Final = re.compile(r"(?:[A-Za-z0-9+/=:,\- \t\r\n]|\\[nrt])*")
_PEM_MAX_BODY: Final = 8192  # a 4096-bit RSA key in PEM is about 3.3 KB

_URL: Final = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
# A run of key characters, with base64's padding at its end only, so `key=abc` splits at the `=`.
_RUN: Final = re.compile(rf"[{_KEY_CHAR}]+={{0,2}}")
_COINBASE_KEY: Final = re.compile(rf"organizations/{_UUID}/apiKeys/{_UUID}")
_UUID_ONLY: Final = re.compile(_UUID)
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_EVM: Final = re.compile(r"0x(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})")
_KRAKEN_SECRET: Final = re.compile(r"[A-Za-z0-9+/]{86}==")
_BASE64_56: Final = re.compile(r"[A-Za-z0-9+/]{56}")
_ALNUM_64: Final = re.compile(r"[A-Za-z0-9]{64}")
_GEMINI_KEY: Final = re.compile(r"account-[A-Za-z0-9]{12,}")
# KeyMedic's own opaque reference (bot/store/services.py `pc_`): safe to show, it opens nothing by itself.
_OWN_REFERENCE: Final = re.compile(r"pc_[A-Za-z0-9_-]{32}")
# A credential form's one-time token (bot/intake/tokens.py `it_`): whoever holds it may post a key for them.
_FORM_TOKEN: Final = re.compile(r"it_[A-Za-z0-9_-]{43}")
# A trained model's file (`bot.training`: `keymedic-<fingerprint>.tar.gz`), after an optional directory.
_MODEL_FILE: Final = re.compile(r"(?P<directory>[A-Za-z0-9_/.\-]*/)?keymedic-[0-9a-f]{8,64}")
_MODEL_SUFFIX: Final = ".tar.gz"

# A named value: `api_key=…`, `secret: …`, `"api_secret": "…"`, `my passphrase is …`.
_NAMED: Final = re.compile(
    r"""(?ix)
    (?<![A-Za-z])
    (?P<name>
        api[\s_-]?secret | secret[\s_-]?key | client[\s_-]?secret | private[\s_-]?key | privatekey
      | api[\s_-]?key | apikey | access[\s_-]?key | key
      | secret | passphrase | pass[\s_-]?phrase | password
    )
    ["']?\s*
    (?: = | : | \bis\b | \bwas\b | -> )
    \s*["']?
    (?P<value>[^\s"',;]+)
    """
)
_WORD_PARTS: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^A-Za-z0-9]+")
_SEPARATORS: Final = re.compile(r"[-_/+.=]+")
_WORD_SHAPE: Final = re.compile(r"[a-z]+|[A-Z][a-z]+|[A-Z]+|[0-9]+")
# Passphrase candidates: whitespace-separated words, without the punctuation that ends a sentence.
_WORD: Final = re.compile(r"\S+")
_EDGE_PUNCTUATION: Final = "\"'()[]{}<>.,;:!?"
_QUOTES: Final = "\"'()[]{}<>"
_SYMBOLS: Final = set("!#$%&*+-/=?@^_~|.:")

# Context that makes a UUID, hex string or token an id rather than a key: the word just before it.
_ID_CONTEXT: Final = re.compile(
    r"""(?ix)
    \b(?: tx | txid | txn | txhash | tx\s*hash | hash | transaction(?:\s*(?:id|hash))?
        | orders? (?:\s*id)? | trades? (?:\s*id)? | deposits? (?:\s*address)?
        | withdrawals? (?:\s*address)? | address | addr | blocks? | commits? )
    \s*(?:\#|no\.?|number|id|:|=|is|was|/)?\s*$
    """
)
_CONTEXT_WINDOW: Final = 40


@dataclass(frozen=True)
class Finding:
    """Where a secret is in the text and what kind it looks like; the value itself is never kept."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Redaction:
    """A message with its secrets replaced by `REDACTED`, and the kinds found (in order, each once)."""

    text: str
    kinds: tuple[str, ...]

    @property
    def redacted(self) -> bool:
        """Whether anything was taken out."""
        return bool(self.kinds)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


_CONSONANT_RUN: Final = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}", re.IGNORECASE)


def _random_letters(piece: str) -> bool:
    """Letters no language writes: 20+ in one piece, or 12+ with five consonants in a row."""
    return len(piece) >= 20 or (len(piece) >= 12 and _CONSONANT_RUN.search(piece) is not None)


def _made_of_words(run: str) -> bool:
    """True for identifiers people write (`kraken_ledgers_2024-01-01`, `getApiKeyInfo`, `KEYMEDIC_URL`)."""
    parts = [p for p in _SEPARATORS.split(run) if p]
    # camelCase is words; a run that chops into many one- or two-letter pieces is random. The average is
    # over the whole run, so short words between long ones (`action_handoff_to_support`) stay words.
    all_letters = [piece for part in parts for piece in _WORD_PARTS.findall(part) if piece.isalpha()]
    if all_letters and sum(len(p) for p in all_letters) / len(all_letters) < 3.5:
        return False
    for part in parts:
        pieces = _WORD_PARTS.findall(part)
        if any(not _WORD_SHAPE.fullmatch(piece) for piece in pieces):
            return False
        letters = [piece for piece in pieces if piece.isalpha()]
        if any(_random_letters(piece) for piece in letters):
            return False
        if any(piece.isdigit() for piece in pieces) and any(piece.isalpha() for piece in pieces):
            # `v2`, `2024q1`, `sha256`: short mixes are words; long ones (`Sandboxlqjwan5fs1tu`) are not.
            if len(part) > 12:
                return False
    return True


_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _is_bitcoin_address(run: str) -> bool:
    """A legacy (base58check) or segwit (bech32/bech32m) address whose checksum holds."""
    lowered = run.lower()
    if lowered.startswith(("bc1", "tb1", "ltc1")):
        return _bech32_ok(lowered)
    if not 25 <= len(run) <= 35 or run[0] not in "123mn" or any(c not in _BASE58 for c in run):
        return False
    number = 0
    for char in run:
        number = number * 58 + _BASE58.index(char)
    raw = number.to_bytes(25, "big") if number.bit_length() <= 200 else b""
    if len(raw) != 25:
        return False
    checksum = hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4]
    return checksum == raw[21:]


_BECH32_CHARS: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_ok(value: str) -> bool:
    # BIP-173 / BIP-350: the polymod over the expanded prefix and the data is 1 (bech32) or 0x2bc830a3 (m).
    prefix, _, data = value.rpartition("1")
    if not prefix or len(data) < 6 or any(c not in _BECH32_CHARS for c in data):
        return False
    values = [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]
    values += [_BECH32_CHARS.index(c) for c in data]
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value_ in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value_
        for i, gen in enumerate(generator):
            check ^= gen if (top >> i) & 1 else 0
    return check in (1, 0x2BC830A3)


def _named_as_id(text: str, start: int) -> bool:
    """Whether the words right before `start` call what follows a transaction, order or address id."""
    before = text[max(0, start - _CONTEXT_WINDOW) : start]
    return _ID_CONTEXT.search(before) is not None


def _model_file(text: str, start: int, run: str) -> bool:
    """A trained model's file name (`models/keymedic-e407d312fb6e0c63.tar.gz`), as Rasa logs it."""
    match = _MODEL_FILE.fullmatch(run)
    if match is None or not text.startswith(_MODEL_SUFFIX, start + len(run)):
        return False
    directory = (match.group("directory") or "").strip("/")
    return not directory or _made_of_words(directory)


def _classify_run(text: str, start: int, run: str, in_url: bool = False) -> str | None:
    """The kind of secret this run of key characters looks like, or None. In a URL, only the shapes that may
    hold a `/` are judged on the whole run; `_url_findings` judges its segments."""
    if _OWN_REFERENCE.fullmatch(run) or run.isdigit():
        return None
    if _FORM_TOKEN.fullmatch(run):
        return "form_token"
    if _COINBASE_KEY.search(run):
        return "coinbase_api_key"
    if _KRAKEN_SECRET.fullmatch(run):
        return "kraken_secret"
    if _GEMINI_KEY.fullmatch(run):
        return "gemini_api_key"
    if _model_file(text, start, run):
        return None
    if in_url:
        # Kraken's key is base64 and may hold a "/", so it is looked for before the run is cut at them.
        has_both = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
        return "kraken_api_key" if _BASE64_56.fullmatch(run) and has_both else None
    stripped = run.strip("/-_")
    if _EVM.fullmatch(stripped):
        return None
    has_digit = any(c.isdigit() for c in stripped)
    has_letter = any(c.isalpha() for c in stripped)
    if _UUID_ONLY.fullmatch(stripped):
        return None if _named_as_id(text, start) else "uuid_secret"
    if _HEX.fullmatch(stripped) and has_digit and has_letter:
        if len(stripped) == 24:
            return "kucoin_api_key"
        if len(stripped) >= 32 and not _named_as_id(text, start):
            return "hex_secret"
        return None
    # Base64 may begin or end with "/" or "+": the whole run counts here, not the stripped one.
    if _BASE64_56.fullmatch(run) and has_digit and has_letter:
        return "kraken_api_key"
    if _ALNUM_64.fullmatch(stripped) and has_digit and has_letter:
        return "binance_key"
    if len(stripped) < _MIN_TOKEN and _short_key(text, start, stripped):
        return "token"
    if len(stripped) < _MIN_TOKEN or not has_letter:
        return None
    if _made_of_words(stripped) or _is_bitcoin_address(stripped):
        return None
    if _entropy(stripped) < _MIN_TOKEN_ENTROPY or _named_as_id(text, start):
        return None
    return "token"


def _short_key(text: str, start: int, run: str) -> bool:
    """An 18-23 character key or secret (Bybit, Crypto.com): mixed case, digits, random, not an id."""
    if not _SHORT_KEY.fullmatch(run) or not any(c.isdigit() for c in run):
        return False
    if not (any(c.isupper() for c in run) and any(c.islower() for c in run)):
        return False
    if _made_of_words(run) or _is_bitcoin_address(run):
        return False
    # Random base62 chops into many short letter pieces (about 9 in 10 random keys average under 3 letters);
    # product names keep their words (`iPhone15ProMax2024` averages 3).
    letters = [piece for piece in _WORD_PARTS.findall(run) if piece.isalpha()]
    if len(letters) < 4 or max(map(len, letters)) > 8 or sum(map(len, letters)) / len(letters) >= 3.0:
        return False
    return _entropy(run) >= _MIN_TOKEN_ENTROPY and not _named_as_id(text, start)


def _looks_like_passphrase(word: str) -> bool:
    """OKX's passphrase rule (8-32 characters with upper, lower, digit and symbol), as a bare word."""
    if not 10 <= len(word) <= 64 or "://" in word or word.startswith("/") or _OWN_REFERENCE.fullmatch(word):
        return False
    if "@" in word and "." in word.rpartition("@")[2]:
        return False  # an e-mail address
    classes = (
        any(c.isupper() for c in word),
        any(c.islower() for c in word),
        any(c.isdigit() for c in word),
        any(c in _SYMBOLS for c in word),
    )
    if not all(classes) or any(not (c.isalnum() or c in _SYMBOLS) for c in word):
        return False
    # One part at least must mix letters and digits at length, not a name with a version (`Binance-US1`).
    parts = re.split(r"[^A-Za-z0-9]+", word)
    return any(len(p) >= 6 and not p.isalpha() and not p.isdigit() for p in parts)


def _looks_like_named_value(value: str) -> bool:
    """Whether what follows `key=`/`passphrase is` is a value rather than a word ("is invalid")."""
    value = value.strip(_EDGE_PUNCTUATION)
    if (
        not value
        or len(value) < 6
        or _OWN_REFERENCE.fullmatch(value)
        or value.lower().startswith(("http://", "https://"))
    ):
        return False
    if value.isalpha():
        # Words in any common case are words ("Expired", "INVALID"); random case is not ("hUnTeR").
        return not _WORD_SHAPE.fullmatch(value)
    if value.isdigit():
        return len(value) >= 6
    return any(c.isalpha() for c in value) or any(c in _SYMBOLS for c in value)


def _pem_blocks(text: str) -> Iterator[Finding]:
    position = 0
    while (header := _PEM_HEADER.search(text, position)) is not None:
        footer = _PEM_FOOTER.search(text, header.end(), header.end() + _PEM_MAX_BODY)
        if footer is not None:
            end = footer.end()
        else:
            body = _PEM_BODY.match(text, header.end(), header.end() + _PEM_MAX_BODY)
            end = body.end() if body is not None else header.end()
            end = header.end() + len(text[header.end() : end].rstrip(" \t\r\n"))
        yield Finding("private_key", header.start(), end)
        position = end


def _url_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _URL.finditer(text)]


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) lies in one of `spans` (sorted, not overlapping: URLs found left to right)."""
    index = bisect.bisect_right(spans, (start, sys.maxsize)) - 1
    return index >= 0 and spans[index][0] <= start and end <= spans[index][1]


class _Taken:
    """The spans already found, sorted and never overlapping: whether a new one is free is two neighbours'
    business (a binary search), not a walk over every finding, which made a paste of many key-like runs
    cost time in the square of its length."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def free(self, start: int, end: int) -> bool:
        index = bisect.bisect_right(self._starts, start)
        if index > 0 and self._ends[index - 1] > start:
            return False
        return not (index < len(self._starts) and self._starts[index] < end)

    def add(self, start: int, end: int) -> None:
        index = bisect.bisect_right(self._starts, start)
        self._starts.insert(index, start)
        self._ends.insert(index, end)


def _slug(segment: str) -> bool:
    """A page's slug (`360000919966-How-to-create-an-API-key`): hyphenated words and numbers. Short words
    are common in titles, so the "made of words" average does not apply; each part must still be a word."""
    parts = [p for p in re.split(r"[-_]", segment) if p]
    return (
        len(parts) >= 3
        and not _UUID_ONLY.fullmatch(segment)
        and all(
            p.isdigit() or (_WORD_SHAPE.fullmatch(p) is not None and not _random_letters(p)) for p in parts
        )
    )


def _url_segments(text: str, start: int, run: str) -> Iterator[Finding]:
    """Secrets among a URL run's path segments: each is judged like free text, with the segments before it
    as its context (`/tx/<hash>` is a transaction, `/keys/<key>` is not); a page's slug is left alone."""
    offset = 0
    for segment in run.split("/"):
        if segment and not _slug(segment):
            kind = _classify_run(text, start + offset, segment)
            if kind is None and _looks_like_passphrase(segment):
                kind = "passphrase"
            if kind is not None:
                yield Finding(kind, start + offset, start + offset + len(segment))
        offset += len(segment) + 1


def find_secrets(text: str) -> list[Finding]:
    """Every secret-looking span in `text`, in order, without overlaps (the first, widest finding wins)."""
    overflow = [Finding("unscanned", _MAX_TEXT, len(text))] if len(text) > _MAX_TEXT else []
    text = text[:_MAX_TEXT]
    findings: list[Finding] = []
    taken = _Taken()
    urls = _url_spans(text)

    def free(start: int, end: int) -> bool:
        return taken.free(start, end)

    def found(finding: Finding) -> None:
        findings.append(finding)
        taken.add(finding.start, finding.end)

    for block in _pem_blocks(text):
        found(block)

    for match in _NAMED.finditer(text):
        value_start = match.start("value")
        raw = match.group("value")
        # Only quotes and brackets come off: "passphrase is Summer-2024!" may well end in its "!".
        value = raw.strip(_QUOTES)
        offset = raw.find(value)
        start, end = value_start + offset, value_start + offset + len(value)
        if not free(start, end) or not _looks_like_named_value(value):
            continue
        name = match.group("name").lower()
        kind = (
            "passphrase"
            if ("pass" in name)
            else "api_secret"
            if ("secret" in name or "private" in name)
            else "api_key"
        )
        # A value with a known shape keeps its more telling kind.
        shaped = _classify_run(text, start, value, in_url=False)
        found(Finding(shaped or kind, start, end))

    for match in _RUN.finditer(text):
        start, end = match.span()
        if not free(start, end):
            continue
        in_url = _inside(urls, start, end)
        run_kind = _classify_run(text, start, match.group(), in_url)
        if run_kind is not None:
            found(Finding(run_kind, start, end))
        elif in_url:
            for segment in _url_segments(text, start, match.group()):
                if free(segment.start, segment.end):
                    found(segment)

    for match in _WORD.finditer(text):
        word = match.group().strip(_EDGE_PUNCTUATION)
        start = match.start() + match.group().find(word)
        end = start + len(word)
        if word and free(start, end) and not _inside(urls, start, end) and _looks_like_passphrase(word):
            found(Finding("passphrase", start, end))

    return sorted(findings + overflow, key=lambda f: f.start)


def redact(text: str) -> Redaction:
    """`text` with every secret replaced by `REDACTED`, and the kinds that were found."""
    findings = find_secrets(text)
    if not findings:
        return Redaction(text, ())
    pieces: list[str] = []
    position = 0
    for finding in findings:
        pieces.append(text[position : finding.start])
        pieces.append(REDACTED)
        position = finding.end
    pieces.append(text[position:])
    kinds = tuple(dict.fromkeys(f.kind for f in findings))
    return Redaction("".join(pieces), kinds)


def redact_value(value: object) -> tuple[object, tuple[str, ...]]:
    """A JSON-like value (metadata) with every string in it redacted, and the kinds found."""
    if isinstance(value, str):
        result = redact(value)
        return result.text, result.kinds
    if isinstance(value, dict):
        kinds: dict[str, None] = {}
        out: dict[object, object] = {}
        for key, item in value.items():
            out[key], found = redact_value(item)
            kinds.update(dict.fromkeys(found))
        return out, tuple(kinds)
    if isinstance(value, list | tuple):
        kinds = {}
        items = []
        for item in value:
            redacted_item, found = redact_value(item)
            items.append(redacted_item)
            kinds.update(dict.fromkeys(found))
        return items, tuple(kinds)
    return value, ()
