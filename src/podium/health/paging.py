"""Paging: the outbox of notifications about incidents, and the worker that sends them.

The incident service calls ``Pager.on_triggered`` / ``on_acknowledged`` / ``on_resolved``
inside the transaction that changes the incident. Those hooks only write ``Notification``
rows (the outbox) and the incident's escalation fields, so a page exists exactly when the
incident change does. A worker thread sends due rows through Apprise, retries failures
with exponential backoff, and escalates incidents nobody acknowledged:

- level 0: the person on call is paged when the incident is triggered;
- level 1: after the rotation's ``escalate_after_minutes``, the next person in the rotation;
- level 2: after as long again, every member of the team.

A row is marked sent only once Apprise reports success, so a page is never lost. On
PostgreSQL, where several servers may share the store, a row is claimed with
``SELECT … FOR UPDATE SKIP LOCKED`` and stays locked while it is sent, in the transaction
that records the outcome: two workers (the leader's, and for a moment a deposed one's)
never send the same row, and a worker that dies mid-send releases the row to the next at
once. Only a death in the instant between the receiver's answer and the commit sends a
page twice. SQLite has one server, and its one worker claims nothing (a write transaction
held across a send would stall every other writer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import apprise
from sqlalchemy import CursorResult, Select, Update, event, select, update
from sqlalchemy.orm import Session

from podium.catalog.models import Service, Team
from podium.config import Settings
from podium.health.models import Incident, IncidentState, Notification, Rotation, RotationOverride
from podium.health.oncall import Person, backup_for, who_is_on_call, whole_team
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)

NO_ROTATION = "(no on-call rotation)"
TITLE_MAX = 300  # the column's length
RECIPIENT_MAX = 80
WAKE_KEY = "podium.pager.wake"  # in Session.info: this session wakes the worker when it commits


class Kind:
    """What a notification is about (the ``kind`` column)."""

    TRIGGER = "trigger"
    ESCALATE = "escalate"
    RESOLVE = "resolve"


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: initial, doubled each time, capped."""
    return min(initial * 2.0 ** min(max(attempts - 1, 0), 30), maximum)


def page_state(row: Notification, max_attempts: int) -> str:
    """``sent``, ``pending`` (waiting for its next attempt), ``failed`` (given up) or ``no-target``."""
    if row.sent_at is not None:
        return "sent"
    if not row.url:
        return "no-target"
    return "failed" if row.attempts >= max_attempts else "pending"


class LogCollector(logging.Handler):
    """Keeps the warnings Apprise logs while sending, to say why a page failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def send(url: str, title: str, body: str) -> str | None:
    """Send one notification through Apprise; None on success, else why it failed."""
    notifier = apprise.Apprise()
    collector = LogCollector()
    apprise_log = logging.getLogger("apprise")
    apprise_log.addHandler(collector)
    try:
        if not notifier.add(url):
            return "Apprise does not understand this URL"
        if notifier.notify(title=title, body=body):
            return None
    except Exception as exc:  # a plugin's own failure must not stop the worker
        return f"Apprise failed: {type(exc).__name__}: {exc}"
    finally:
        apprise_log.removeHandler(collector)
    return collector.messages[-1] if collector.messages else "Apprise could not deliver the notification"


class Pager:
    """Writes pages into the outbox with incident changes, and sends them in the background."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``clock`` gives the time every outbox and escalation decision is made at (tests move it)."""
        self.settings = settings
        self.store = store
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Hooks: called by the incident service inside the incident's transaction ----------

    def on_triggered(self, session: Session, incident: Incident) -> None:
        """Page the person on call for the incident's team, and schedule the first escalation.

        A team without a rotation gets a row that says nobody was paged, never retried,
        so the gap shows.
        """
        now = self.clock()
        if incident.id is None:
            session.flush()
        incident.escalation_level = 0
        incident.next_escalation_at = None
        rotation, overrides = _rotation(session, incident.team_id, now)
        title, body = self._trigger_text(session, incident)
        if rotation is None:
            team = session.get(Team, incident.team_id)
            name = team.name if team is not None else str(incident.team_id)
            session.add(Notification(
                incident_id=incident.id, kind=Kind.TRIGGER, recipient=NO_ROTATION, url="", title=title,
                body=body, created_at=now, next_attempt_at=now,
                last_error=f"team {name!r} has no on-call rotation, so nobody was paged: "
                f"set one with `podium oncall set --team {name}`",
            ))
            return
        current = who_is_on_call(rotation, overrides, now).current
        self._page(session, incident, [current], Kind.TRIGGER, title, body, now)
        incident.next_escalation_at = now + timedelta(minutes=rotation.escalate_after_minutes)

    def on_acknowledged(self, session: Session, incident: Incident) -> None:
        """Someone has it: stop escalating."""
        incident.next_escalation_at = None

    def on_resolved(self, session: Session, incident: Incident) -> None:
        """Stop escalating, and tell everyone paged for the incident that it is resolved."""
        incident.next_escalation_at = None
        now = self.clock()
        stmt = (
            select(Notification.recipient, Notification.url)
            .where(
                Notification.incident_id == incident.id,
                Notification.kind.in_([Kind.TRIGGER, Kind.ESCALATE]),
                Notification.url != "",
            )
            .order_by(Notification.id)
        )
        paged = [Person(name, url) for name, url in session.execute(stmt)]
        if not paged:
            return
        service, env = self._where(session, incident)
        by = f" by {incident.resolved_by}" if incident.resolved_by else ""
        title = _title(f"[Podium] Resolved: {incident.summary}")
        body = (
            f"Resolved{by}: {service} ({env}), incident #{incident.id}.\n"
            f"{incident.summary}\n\n{self._link(incident)}"
        )
        self._page(session, incident, paged, Kind.RESOLVE, title, body, now)

    # The worker ---------------------------------------------------------------------

    def run(self) -> None:
        """Start the worker thread: it sends due pages and escalates, until ``close``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="pager", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the worker, letting a send in progress finish (and be recorded)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def wake(self) -> None:
        """Look at the outbox and for escalations now rather than at the next poll."""
        self._wake.set()

    def deliver_due(self) -> int:
        """Send every page that is due; the number sent (the rest were rescheduled or given up)."""
        sent = 0
        while not self._stop.is_set():
            outcome = self._deliver_next()
            if outcome is None:
                break
            sent += outcome
        return sent

    def _due(self) -> Select[Notification]:
        return (
            select(Notification)
            .where(
                Notification.sent_at.is_(None),
                Notification.url != "",
                Notification.attempts < self.settings.paging_max_attempts,
                Notification.next_attempt_at <= self.clock(),
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(1)
        )

    def _deliver_next(self) -> int | None:
        """Send the next due page and record the outcome; 1 if sent, 0 if not, None if none is due."""
        if self.store.engine.dialect.name == "postgresql":
            with self.store.session() as session:
                row = session.scalar(self._due().with_for_update(skip_locked=True))
                if row is None:
                    return None
                values = self._attempt(row)
                session.execute(self._record(row.id, values))
        else:
            with self.store.session() as session:
                row = session.scalar(self._due())
            if row is None:
                return None
            values = self._attempt(row)
            with self.store.session() as session:
                session.execute(self._record(row.id, values))
        return 1 if "sent_at" in values else 0

    def escalate_due(self) -> int:
        """Escalate every triggered incident whose escalation time has come; how many were."""
        now = self.clock()
        with self.store.session() as session:
            stmt = select(Incident.id).where(
                Incident.state == IncidentState.TRIGGERED,
                Incident.next_escalation_at.is_not(None),
                Incident.next_escalation_at <= now,
            )
            due = list(session.scalars(stmt))
        return sum(self._escalate(incident_id, now) for incident_id in due)

    def _work(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if woken or time.monotonic() >= next_scan:
                    self.escalate_due()
                    next_scan = time.monotonic() + self.settings.paging_escalation_interval
                self.deliver_due()
            except Exception:  # the store may be busy or away: log it, and look again later
                log.exception("paging worker: a pass failed; trying again at the next poll")
            wait = min(self.settings.paging_poll_interval, max(next_scan - time.monotonic(), 0.0))
            self._wake.wait(wait)

    def _attempt(self, row: Notification) -> dict[str, Any]:
        """Send one row; the columns that record the outcome: sent, retried later, or given up."""
        error = send(row.url, row.title, row.body)
        now = self.clock()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts}
        if error is None:
            values["sent_at"] = now
        elif attempts >= self.settings.paging_max_attempts:
            values["last_error"] = f"gave up after {attempts} attempts: {error}"
            log.warning("page %s to %s: gave up after %s attempts: %s", row.id, row.recipient, attempts, error)
        else:
            values["last_error"] = error
            delay = backoff(attempts, self.settings.paging_retry_initial, self.settings.paging_retry_max)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        return values

    @staticmethod
    def _record(row_id: int, values: dict[str, Any]) -> Update:
        return (
            update(Notification)
            .where(Notification.id == row_id, Notification.sent_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def _escalate(self, incident_id: int, now: datetime) -> int:
        """Take an incident one level up, if it is still triggered and due; 1 if it was."""
        with self.store.session() as session:
            # Claim the step first, as the transaction's first statement: an acknowledgement
            # committed a moment ago clears next_escalation_at, and then this matches nothing.
            claimed = cast(CursorResult[Any], session.execute(
                update(Incident)
                .where(
                    Incident.id == incident_id,
                    Incident.state == IncidentState.TRIGGERED,
                    Incident.next_escalation_at.is_not(None),
                    Incident.next_escalation_at <= now,
                )
                .values(next_escalation_at=None)
                .execution_options(synchronize_session=False)
            ))
            if claimed.rowcount != 1:
                return 0
            incident = session.get(Incident, incident_id, populate_existing=True)
            assert incident is not None
            rotation, overrides = _rotation(session, incident.team_id, now)
            if rotation is None:  # the rotation went away since the trigger: nobody left to page
                return 0
            backup = backup_for(rotation, overrides, now) if incident.escalation_level == 0 else None
            service, env = self._where(session, incident)
            title = _title(f"[Podium] {incident.summary}")
            if backup is not None:
                incident.escalation_level = 1
                incident.next_escalation_at = now + timedelta(minutes=rotation.escalate_after_minutes)
                lead = f"Escalated: not acknowledged after {rotation.escalate_after_minutes} min."
                self._page(session, incident, [backup], Kind.ESCALATE, title,
                           self._body(incident, service, env, lead), now)
            else:
                incident.escalation_level = 2
                lead = "Escalated to the whole team: still not acknowledged."
                self._page(session, incident, whole_team(rotation, overrides, now), Kind.ESCALATE, title,
                           self._body(incident, service, env, lead), now)
            return 1

    # Writing pages -------------------------------------------------------------------

    def _page(
        self, session: Session, incident: Incident, persons: Sequence[Person], kind: str,
        title: str, body: str, now: datetime,
    ) -> None:
        """Add one outbox row per person (each URL once), and wake the worker once they are committed."""
        seen: set[str] = set()
        for person in persons:
            if person.url in seen:
                continue
            seen.add(person.url)
            session.add(Notification(
                incident_id=incident.id, kind=kind, recipient=person.name[:RECIPIENT_MAX], url=person.url,
                title=title, body=body, created_at=now, next_attempt_at=now,
            ))
        if not session.info.get(WAKE_KEY):
            session.info[WAKE_KEY] = True
            event.listen(session, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        self._wake.set()

    def _trigger_text(self, session: Session, incident: Incident) -> tuple[str, str]:
        service, env = self._where(session, incident)
        return _title(f"[Podium] {incident.summary}"), self._body(incident, service, env, "Triggered.")

    def _body(self, incident: Incident, service: str, env: str, lead: str) -> str:
        return (
            f"{lead}\n"
            f"Service: {service}\nEnvironment: {env}\nIncident: #{incident.id}\n"
            f"{incident.summary}\n\n"
            f"{self._link(incident)}\n"
            f"Acknowledge: podium incidents ack {incident.id}"
        )

    def _link(self, incident: Incident) -> str:
        return f"{self.settings.base_url.rstrip('/')}/incidents/{incident.id}"

    @staticmethod
    def _where(session: Session, incident: Incident) -> tuple[str, str]:
        service = session.get(Service, incident.service_id)
        return (service.name if service is not None else f"service {incident.service_id}"), (
            incident.environment or "-"
        )


def _rotation(
    session: Session, team_id: int, now: datetime
) -> tuple[Rotation | None, list[RotationOverride]]:
    """A team's rotation (None when it has none, or nobody in it) and its overrides not yet over."""
    rotation = session.scalar(select(Rotation).where(Rotation.team_id == team_id))
    if rotation is None or not rotation.members:
        return None, []
    stmt = (
        select(RotationOverride)
        .where(RotationOverride.rotation_id == rotation.id, RotationOverride.ends_at > now)
        .order_by(RotationOverride.id)
    )
    return rotation, list(session.scalars(stmt))


def _title(text: str) -> str:
    return text if len(text) <= TITLE_MAX else f"{text[: TITLE_MAX - 1]}…"
