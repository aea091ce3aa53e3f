"""PixVerse's webhooks: is a callback PixVerse's own, fresh, and not a replay?

PixVerse POSTs a finished video's outcome to the URL configured for the
account, signed with the account's webhook secret:
Webhook-Signature = Base64(HMAC-SHA256(secret, "{timestamp}\\n{nonce}\\n{payload}")),
where the docs call the payload the body "URL-encoded". Which encoding is
meant is not confirmed (API-NOTES 3.5): the one public verifier quotes the
raw body as one string, the docs' wording suggests key=value pairs joined
by "&". Every reading is accepted; each one still needs the secret.

A webhook only says "look now": the view (generations/views.py) has the
job's status read at once, and that read decides. Nothing in a webhook's
body is trusted.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote, urlencode

MAX_BODY_BYTES = 64 * 1024
# How far a webhook's timestamp may be from our clock, either way.
TOLERANCE_SECONDS = 300
NONCE_MAX_LENGTH = 64


class Refused(Exception):
    """A webhook that is not accepted; status is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Headers:
    timestamp: str
    nonce: str
    signature: str


def signature(secret: str, timestamp: str, nonce: str, payload: str) -> str:
    message = f"{timestamp}\n{nonce}\n{payload}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def payload_readings(body: bytes) -> list[str]:
    """Every form of "the body URL-encoded" a signature may have been made over.

    The raw body quoted as one string (with urllib's default safe "/" and
    with nothing safe), the raw body itself, and the JSON object's top-level
    pairs form-encoded in the body's order -- values as JSON writes them
    (true, 10.5) and as Python's str() does (True), since implementations
    differ -- and in sorted order (Go's url.Values.Encode sorts its keys).
    """
    # Quoted from the bytes: a body that is not UTF-8 is then refused, not an error.
    text = body.decode("utf-8", errors="replace")
    readings = [quote(body), quote(body, safe=""), text]
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        document = None
    if isinstance(document, dict):
        as_json = [(k, v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
                   for k, v in document.items()]
        readings += [urlencode(as_json), urlencode(list(document.items())), urlencode(sorted(as_json))]
    return list(dict.fromkeys(readings))


def signature_matches(secret: str, headers: Headers, body: bytes) -> bool:
    """True if the signature was made with this secret over any reading of the body."""
    given = headers.signature.strip().encode()
    return any(
        hmac.compare_digest(signature(secret, headers.timestamp, headers.nonce, payload).encode(), given)
        for payload in payload_readings(body)
    )


def check_headers(timestamp: str | None, nonce: str | None, given_signature: str | None,
                  now: float) -> Headers:
    """The three headers, present and well-formed, and the timestamp within the window."""
    if not timestamp or not nonce or not given_signature:
        raise Refused(400, "missing Webhook-Timestamp, Webhook-Nonce or Webhook-Signature")
    # At most 12 digits: int() of thousands of digits raises, and no such time is near now.
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(400, "Webhook-Timestamp is not unix seconds")
    if abs(int(timestamp) - now) > TOLERANCE_SECONDS:
        raise Refused(400, "Webhook-Timestamp outside the allowed window")
    if len(nonce) > NONCE_MAX_LENGTH:
        raise Refused(400, "Webhook-Nonce too long")
    return Headers(timestamp=timestamp, nonce=nonce, signature=given_signature)


def nonce_cache_key(nonce: str) -> str:
    # Hashed: any characters, any length up to the limit, make a valid cache key.
    return "pixverse-webhook-nonce:" + hashlib.sha256(nonce.encode()).hexdigest()


# A nonce is remembered while a webhook carrying it could still pass the timestamp check.
NONCE_KEEP_SECONDS = 2 * TOLERANCE_SECONDS + 60


def video_id_of(body: bytes) -> int:
    """The video id a (signed) webhook is about: a string or a number in "id"."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "body is not JSON") from None
    raw = document.get("id") if isinstance(document, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise Refused(400, "no video id")
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) >= 2**63:
        raise Refused(400, "no video id")
    return int(text)
