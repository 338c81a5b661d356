"""Where alerts go: a `Channel` sends one payload and says what became of it.

The webhook is the one channel today: one JSON POST per alert. Another (email, a chat service's
API) is one class with a ``destination``, a ``key``, a ``down`` flag and a ``send``, plus its
settings in the config's "alerts".

Delivery never fails a tick: a hard deadline per attempt, three attempts with backoff, no
redirect followed, the answer's body never read, and nothing secret (a webhook URL's path) in
what is logged or recorded. A request that went out whole but whose answer did not come back in
time is "sent, answer not seen" (`AlertOutcome.UNCONFIRMED`) and is not sent again: a slow
receiver most likely has it, and a retry would make it post the alert twice. Standard library
only at import: requests is imported when there is something to send, so the quiet tick stays cheap.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from drs.history import AlertOutcome

TIMEOUT_SECONDS = 3.0
RETRY_WAITS = (0.5, 1.0)  # seconds before the second and the third attempt


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one alert: delivered or not, after how many attempts, the receiver's HTTP status
    (when it answered 2xx) or why not; `sent`: not delivered as far as we know, but the last attempt's
    request went out whole (its answer was not seen in time)."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    sent: bool = False

    @property
    def outcome(self) -> AlertOutcome:
        if self.delivered:
            return AlertOutcome.DELIVERED
        return AlertOutcome.UNCONFIRMED if self.sent else AlertOutcome.NOT_DELIVERED

    def to_json(self) -> dict:
        """The result as the tick's record keeps it: {"outcome", "delivered", "attempts", "status"?, "error"?};
        "delivered" is null when the request went out and its answer was not seen: nobody knows."""
        outcome = self.outcome
        delivered = None if outcome is AlertOutcome.UNCONFIRMED else self.delivered
        record: dict = {"outcome": outcome.value, "delivered": delivered, "attempts": self.attempts}
        if self.status is not None:
            record["status"] = self.status
        if self.error is not None:
            record["error"] = self.error
        return record


class Channel(Protocol):
    """Sends alerts somewhere. `destination` names it for logs and records and never holds a secret;
    `key` tells this receiver from another one in the alert state (a digest, never the secret itself);
    `down` set: each alert is tried once, without retries (the receiver failed lately)."""

    down: bool

    @property
    def destination(self) -> str: ...

    @property
    def key(self) -> str: ...

    def send(self, payload: dict) -> DeliveryResult:
        """Deliver one alert payload ({"event", "text", "version", "time", "details"}); never raises."""
        ...


class WebhookChannel:
    """POSTs each payload as JSON to a webhook URL (Slack, Mattermost or any receiver).

    waits: the seconds slept before each retry. Once one alert found the receiver down, the
    channel's later alerts try once: a tick is not held up for long.
    """

    def __init__(self, url: str, waits: tuple[float, ...] = RETRY_WAITS, timeout: float = TIMEOUT_SECONDS):
        self.url = url
        self.waits = waits
        self.timeout = timeout
        self.down = False

    @property
    def destination(self) -> str:
        return receiver(self.url)

    @property
    def key(self) -> str:
        return "webhook:" + hashlib.sha256(self.url.encode("utf-8")).hexdigest()[:16]

    def send(self, payload: dict) -> DeliveryResult:
        result = deliver(self.url, payload, () if self.down else self.waits, self.timeout)
        self.down = self.down or not result.delivered
        return result


def channel_for(settings: dict, waits: tuple[float, ...] = RETRY_WAITS) -> Channel:
    """The channel the config's "alerts" settings name (today: "webhook_url")."""
    return WebhookChannel(settings["webhook_url"], waits)


def receiver(url: str) -> str:
    """The webhook URL without its path, which is often a secret: fit for logs and records."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def deliver(url: str, payload: dict, waits=RETRY_WAITS, timeout: float = TIMEOUT_SECONDS) -> DeliveryResult:
    """POST payload as JSON: 1 + len(waits) attempts, sleeping waits[i] before attempt i + 2.

    Any 2xx answer is delivered. A refused request (4xx other than 429) is not retried, nor is one that
    went out whole and got no answer in time (the receiver may well have it). Never raises.
    """
    body = json.dumps(payload, default=str).encode("utf-8")
    error: str | None = "not sent"
    attempt = 0
    for attempt, wait in enumerate((0.0, *waits), start=1):
        time.sleep(wait)
        status, error, sent = _post_within(url, body, timeout)
        if status is None:
            if sent:
                return DeliveryResult(False, attempt, error=error, sent=True)
            continue
        if 200 <= status < 300:
            return DeliveryResult(True, attempt, status=status)
        # A redirect is not followed: requests would turn the POST into a GET that answers 200.
        error = f"HTTP {status}" + (" (a redirect: not followed, give the final URL)" if 300 <= status < 400 else "")
        if status < 500 and status != 429:
            break  # the receiver refuses this alert: asking again will not change its mind
    return DeliveryResult(False, attempt, error=error)


def _post_within(url: str, body: bytes, seconds: float) -> tuple[int | None, str | None, bool]:
    """(HTTP status, None, True) or (None, why not, whether the request went out whole), within `seconds` in all.

    requests' timeout bounds each socket wait, not the whole exchange: a receiver that trickles
    its answer a byte at a time would hold the tick for ever. The POST runs in a daemon thread
    that is left behind after `seconds` (the tick ends soon after); the answer's body is never
    read, so a huge one costs nothing.
    """
    import requests  # only when there is something to send: the quiet tick imports nothing more

    outcome: dict = {}
    request_body = _Body(body)

    def post() -> None:
        try:
            with requests.post(
                url,
                data=request_body,
                timeout=seconds,
                allow_redirects=False,
                stream=True,
                headers={"Content-Type": "application/json"},
            ) as response:
                outcome["status"] = response.status_code
        except requests.ConnectTimeout:
            outcome["error"] = f"no connection within {seconds:g} s"
        except requests.Timeout:  # the same words as the deadline's below, whichever of them comes first
            outcome["error"] = f"no complete answer within {seconds:g} s"
        except (requests.RequestException, ValueError) as exc:  # ValueError: a URL requests cannot use
            outcome["error"] = _reason(exc)

    thread = threading.Thread(target=post, name="alert", daemon=True)
    thread.start()
    thread.join(seconds)
    sent = request_body.sent.is_set()
    if not thread.is_alive() and "status" in outcome:
        return outcome["status"], None, True
    error = f"no complete answer within {seconds:g} s" if thread.is_alive() else str(outcome.get("error"))
    return None, f"sent, {error}" if sent else error, sent


class _Body(io.BytesIO):
    """A request body that notes when the HTTP client has read it to its end (`sent`).

    The client reads the next block only once it has handed the previous one to the socket, so the
    end of the body means the whole request went out: whatever happens to the answer, the receiver
    may have the alert.
    """

    def __init__(self, data: bytes):
        super().__init__(data)
        self.sent = threading.Event()

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        if not block:
            self.sent.set()
        return block


def _reason(exc: BaseException) -> str:
    """The root cause of a failed request ("Connection refused"), without the URL (often a secret)."""
    cause: BaseException | None = exc
    for _ in range(10):  # requests -> urllib3 -> the socket's OSError
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        reason = getattr(cause, "reason", None)
        cause = reason if isinstance(reason, BaseException) else cause.__cause__ or cause.__context__
    return type(exc).__name__
