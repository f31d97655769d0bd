"""The application SDK's client: local answers from cached definitions, events sent in batches.

Nothing here raises into the app: while Podium cannot be reached, ``variant`` gives None,
``flag`` gives the caller's default (or the last definitions fetched), and events wait in
a bounded buffer; background threads keep trying. Standard library only, so that any app
can use it (see docs/experiments.md, "The Python SDK").
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from podium.experiments.evaluate import Evaluator

log = logging.getLogger("podium.sdk")

USER_AGENT = "podium-sdk-python/1"
# A status worth sending the same batch again for; any other 4xx means the batch never will be taken.
RETRYABLE = frozenset({408, 425, 429})
MAX_REMEMBERED = 1_000_000  # (experiment, user) pairs already exposed in this process
RETRY_FIRST = 0.2  # seconds before the first retry; doubled each time up to the interval
START_TIMEOUT = 3.0  # seconds the constructor waits, at most, for the first definitions


def _seconds(given: float | None, variable: str, default: float) -> float:
    """``given``, else the environment variable when it is a positive number, else ``default``."""
    if given is not None:
        return given
    try:
        value = float(os.environ.get(variable, ""))
    except ValueError:
        return default
    return value if value > 0 else default


class _Unavailable(Exception):
    """Podium did not answer, or answered 5xx: try again later."""


class Client:
    """Experiments and flags of one service environment, evaluated in the app's process.

    Every argument defaults to what Podium gives a deployed app: ``PODIUM_URL``,
    ``PODIUM_TOKEN``, ``PODIUM_SERVICE``, ``PODIUM_ENV``. Definitions are fetched at once
    and every ``refresh_interval`` seconds (default ``PODIUM_REFRESH_INTERVAL`` or 30; with
    an ETag, so unchanged ones cost a 304); events go out every ``flush_interval`` seconds
    (``PODIUM_FLUSH_INTERVAL`` or 5), or as soon as ``batch_size`` wait.

    The constructor waits up to ``start_timeout`` seconds (default 3; 0 to not wait) for the
    first definitions, so that a script's first answers are real ones. It never raises: when
    the time runs out (or Podium refuses the request) the client starts answering None and
    keeps trying in the background.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        service: str | None = None,
        env: str | None = None,
        *,
        refresh_interval: float | None = None,
        flush_interval: float | None = None,
        batch_size: int = 500,
        timeout: float = 10.0,
        max_buffer: int = 100_000,
        start: bool = True,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.url = (url or os.environ.get("PODIUM_URL") or "").rstrip("/")
        self.token = token or os.environ.get("PODIUM_TOKEN") or ""
        self.service = service or os.environ.get("PODIUM_SERVICE") or ""
        self.env = env or os.environ.get("PODIUM_ENV") or ""
        self.refresh_interval = _seconds(refresh_interval, "PODIUM_REFRESH_INTERVAL", 30.0)
        self.flush_interval = _seconds(flush_interval, "PODIUM_FLUSH_INTERVAL", 5.0)
        self.batch_size = max(1, min(batch_size, 10_000))
        self.timeout = timeout
        self.max_buffer = max_buffer
        self._evaluator = Evaluator(None)
        self._etag: str | None = None
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready, or refused for good: no use waiting longer
        self._closed = threading.Event()
        self._wake_flusher = threading.Event()
        self._buffer: list[dict[str, Any]] = []
        self._buffer_lock = threading.Lock()
        self._send_lock = threading.Lock()  # one batch in flight at a time, always the buffer's head
        self._exposed: set[tuple[str, str]] = set()
        self.sent = 0  # events Podium took (stored or known already)
        self.dropped = 0  # events lost: the buffer was full, or Podium refused the batch
        self.last_error: str | None = None
        self._threads: list[threading.Thread] = []
        self.configured = bool(self.url and self.service and self.env)
        if not self.configured:
            log.warning("podium: PODIUM_URL, PODIUM_SERVICE or PODIUM_ENV not set; every variant is None")
        elif start:
            self.start()
            if start_timeout > 0:
                self._settled.wait(start_timeout)

    # Lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background refresher and flusher (done by the constructor unless ``start=False``)."""
        if self._threads:
            return
        for target, name in ((self._refresh_loop, "podium-refresh"), (self._flush_loop, "podium-flush")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first definitions have arrived; False if they did not within ``timeout``."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered (for up to ``timeout`` seconds) and stop the background threads."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake_flusher.set()
        for thread in self._threads:
            thread.join(timeout=1.0)
        self.flush(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # Answers ---------------------------------------------------------------------------

    @property
    def evaluator(self) -> Evaluator:
        """The evaluator over the latest definitions (replaced as a whole on each change)."""
        return self._evaluator

    def variant(self, key: str, user_id: str, attributes: Mapping[str, Any] | None = None) -> str | None:
        """The user's variant of experiment ``key``, or None when they are not in it.

        The first time a user gets a variant of a running experiment in this process, an
        exposure event is queued for Podium's results.
        """
        try:
            direct = self._evaluator.direct.get(key)
            if direct is not None and type(user_id) is str:  # a running experiment without conditions
                variant = direct(user_id)
                if variant is not None:
                    self._expose(key, user_id, variant, attributes)
                return variant
            user_id = str(user_id)
            answer = self._evaluator.assignment(key, user_id, attributes)
            if answer.exposure and answer.variant is not None:
                self._expose(key, user_id, answer.variant, attributes)
            return answer.variant
        except Exception:  # never into the app
            log.exception("podium: variant(%r) failed", key)
            return None

    def _expose(self, key: str, user_id: str, variant: str, attributes: Mapping[str, Any] | None) -> None:
        """Queue an exposure the first time this process gives the user a variant of ``key``."""
        seen = (key, user_id)
        if seen in self._exposed:
            return
        if len(self._exposed) >= MAX_REMEMBERED:
            self._exposed.clear()  # Podium counts a user's first exposure; a repeat is harmless
        self._exposed.add(seen)
        self._queue({"type": "exposure", "user_id": user_id, "experiment": key, "variant": variant}, attributes)

    def flag(self, key: str, user_id: str, attributes: Mapping[str, Any] | None = None, default: Any = None) -> Any:
        """Flag ``key``'s value for the user; ``default`` when there is no such flag (yet)."""
        try:
            return self._evaluator.flag(key, str(user_id), attributes, default)
        except Exception:
            log.exception("podium: flag(%r) failed", key)
            return default

    def track(
        self, user_id: str, event: str, value: float = 1.0, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """Record that the user did ``event`` (a metric: a signup, an error, an amount)."""
        try:
            self._queue({"type": "metric", "user_id": str(user_id), "name": event, "value": float(value)}, attributes)
        except Exception:
            log.exception("podium: track(%r) failed", event)

    # Definitions -----------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch the definitions now (a 304 keeps the cached ones); False when Podium could not be reached."""
        path = "/api/v1/services/{}/environments/{}/definitions".format(
            urllib.parse.quote(self.service, safe=""), urllib.parse.quote(self.env, safe="")
        )
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            status, body, reply_headers = self._request("GET", path, None, headers)
        except _Unavailable as exc:
            self._note_error(f"definitions: {exc}")
            return False
        if status == 304:
            self._mark_ready()
            return True
        if status != 200:
            self._note_error(f"definitions: HTTP {status}: {body[:200]!r}")
            if status not in RETRYABLE:
                self._settled.set()  # a 401, 403 or 404 will not turn into definitions while we wait
            return False
        try:
            document = json.loads(body)
        except ValueError:
            self._note_error("definitions: not JSON")
            return False
        self._evaluator = Evaluator(document)
        self._etag = reply_headers.get("etag")
        self.last_error = None
        self._mark_ready()
        return True

    def _mark_ready(self) -> None:
        self._ready.set()
        self._settled.set()

    def _refresh_loop(self) -> None:
        delay = RETRY_FIRST
        while not self._closed.is_set():
            if self.refresh():
                delay = RETRY_FIRST
                wait = self.refresh_interval
            else:  # not reachable: try again soon, then less often
                wait = min(delay, self.refresh_interval)
                delay *= 2
            self._closed.wait(wait)

    # Events ----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events waiting to be sent."""
        with self._buffer_lock:
            return len(self._buffer)

    def _queue(self, event: dict[str, Any], attributes: Mapping[str, Any] | None) -> None:
        event["id"] = uuid.uuid4().hex
        event["at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if attributes:
            event["attributes"] = dict(attributes)
        with self._buffer_lock:
            if len(self._buffer) >= self.max_buffer or not self.configured:
                self.dropped += 1
                return
            self._buffer.append(event)
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake_flusher.set()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send every buffered event now; True once all are sent, False if ``timeout`` ran out first.

        A batch that meets a network error or a 5xx is sent again, with the same event ids,
        so Podium stores each event once.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = RETRY_FIRST
        while self.pending:
            try:
                self._send_head()
                delay = RETRY_FIRST
            except _Unavailable as exc:
                self._note_error(f"events: {exc}")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                time.sleep(delay if left is None else min(delay, left))
                delay = min(delay * 2, max(self.flush_interval, RETRY_FIRST))
        return True

    def _send_head(self) -> None:
        """Send the buffer's first batch; remove it once Podium took it (or refused it for good)."""
        with self._send_lock:
            with self._buffer_lock:
                batch = self._buffer[: self.batch_size]
            if not batch:
                return
            body = json.dumps({"service": self.service, "env": self.env, "events": batch}).encode()
            status, reply, _ = self._request("POST", "/api/v1/events", body, {"Content-Type": "application/json"})
            if status in RETRYABLE:
                raise _Unavailable(f"HTTP {status}")
            if status == 200:
                self.sent += len(batch)
                self._log_rejected(reply)
            else:
                self.dropped += len(batch)
                self._note_error(f"events: HTTP {status}, {len(batch)} events dropped: {reply[:200]!r}")
            with self._buffer_lock:
                del self._buffer[: len(batch)]

    def _log_rejected(self, reply: bytes) -> None:
        try:
            rejected = json.loads(reply).get("rejected") or []
        except (ValueError, AttributeError):
            return
        if rejected:
            log.warning("podium: %d events rejected, first: %s", len(rejected), rejected[0])

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._wake_flusher.wait(self.flush_interval)
            self._wake_flusher.clear()
            if self._closed.is_set():
                return  # close() flushes what is left
            self.flush(timeout=self.flush_interval)

    # HTTP ------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """(status, body, lower-cased headers); _Unavailable on a network error or a 5xx."""
        try:
            request = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310 - PODIUM_URL
            request.add_header("User-Agent", USER_AGENT)
            request.add_header("Accept", "application/json")
            if self.token:
                request.add_header("Authorization", f"Bearer {self.token}")
            for name, value in headers.items():
                request.add_header(name, value)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, data, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, data, got = error.code, error.read(), error.headers
        except (OSError, ValueError) as exc:  # refused, reset, timed out, DNS, bad URL
            raise _Unavailable(str(exc) or type(exc).__name__) from None
        if status >= 500:
            raise _Unavailable(f"HTTP {status}")
        return status, data, {k.lower(): v for k, v in got.items()}

    def _note_error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("podium: %s", message)
        self.last_error = message
