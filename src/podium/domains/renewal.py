"""The certificate loop: issues, renews and retries domains' certificates, on the leader.

Each round takes the domains that need an issuance — pending ones, issued ones within
``renew_before`` of their expiry, and failed ones whose backoff has passed — asks the
issuer for each (one at a time: an ACME order takes seconds), writes the files, records
the outcome in the store and routes the environment again. Everything it needs is in the
store, so a restart (or a new leader) carries on where the last round stopped. A failed
issuance is a status and a one-line error on the domain, tried again after a backoff that
doubles; a renewal that fails keeps the issued certificate served while it is valid.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

from podium.domains.certs import check_pair
from podium.domains.models import Domain, TlsStatus
from podium.domains.service import DomainService
from podium.errors import Invalid
from podium.store.db import utcnow
from podium.tls import CertificateIssuer, IssuanceFailed, IssuedCertificate

log = logging.getLogger(__name__)

ISSUER_OFF = "automatic certificates are off (PODIUM_ACME_DIRECTORY_URL is empty): upload one with --cert/--key"
ERROR_MAX = 500


@dataclass(frozen=True)
class Backoff:
    """Seconds before the next attempt after ``failures`` failures in a row: doubling, capped."""

    initial: float
    maximum: float

    def after(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.maximum, self.initial * 2 ** min(max(failures - 1, 0), 30)))


class CertificateKeeper:
    """Runs rounds every ``interval`` seconds, or at once when woken (a domain was added)."""

    def __init__(
        self, domains: DomainService, issuer: CertificateIssuer | None, *, interval: float,
        renew_before: timedelta, backoff: Backoff,
    ) -> None:
        self.domains = domains
        self.issuer = issuer
        self.interval = interval
        self.renew_before = renew_before
        self.backoff = backoff
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = threading.Event()  # a thread of an earlier term may still be finishing its round
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="certificates", daemon=True)
        self.domains.on_change = self._wake.set
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                self.domains.sync_routes()
                self.run_round()
            except Exception:  # the store may be away: the next round tries again
                log.exception("certificates: a round failed; trying again")
            self._wake.wait(self.interval)

    def due(self, now: datetime) -> list[tuple[int, str]]:
        """(id, name) of each domain that needs an issuance now."""
        retry_passed = or_(Domain.next_attempt_at.is_(None), Domain.next_attempt_at <= now)
        with self.domains.store.session() as session:
            rows = session.execute(
                select(Domain.id, Domain.name).where(or_(
                    and_(Domain.tls.in_([TlsStatus.PENDING, TlsStatus.FAILED]), retry_passed),
                    and_(Domain.tls == TlsStatus.ISSUED, Domain.expires_at <= now + self.renew_before, retry_passed),
                )).order_by(Domain.id)
            ).all()
        return [(row.id, row.name) for row in rows]

    def run_round(self) -> list[str]:
        """Issue what is due; what happened, one line per domain."""
        due = self.due(utcnow())
        if self.issuer is None:
            self._explain_off([domain_id for domain_id, _ in due])
            return []
        done = []
        for domain_id, name in due:
            if self._stop.is_set():
                break
            try:
                issued: IssuedCertificate | str = self.issuer.issue([name])
                if isinstance(issued, IssuedCertificate):  # never hand nginx a pair it cannot serve
                    check_pair(name, issued.chain_pem, issued.key_pem, utcnow())
            except IssuanceFailed as exc:
                issued = exc.detail
            except Invalid as exc:
                issued = f"the issued certificate cannot be served: {exc.detail}"
            except Exception as exc:  # the issuer's own failure is the domain's status, not the loop's end
                log.exception("certificates: issuing %s failed", name)
                issued = f"{type(exc).__name__}: {exc}"
            done.append(self._record(domain_id, name, issued))
        return done

    def _record(self, domain_id: int, name: str, issued: IssuedCertificate | str) -> str:
        now = utcnow()
        with self.domains.store.session() as session:
            row = session.get(Domain, domain_id)
            if row is None or row.name != name:  # removed while it was being issued
                return f"{name}: removed meanwhile"
            if isinstance(issued, IssuedCertificate):
                self.domains.paths(name).write(issued.chain_pem, issued.key_pem)
                row.tls, row.expires_at, row.error = TlsStatus.ISSUED, issued.not_after, ""
                row.failures, row.next_attempt_at = 0, None
                session.flush()
                self.domains.route_environment(session, row.environment_id)
                return f"{name}: issued, expires {issued.not_after:%Y-%m-%d}"
            row.failures += 1
            row.next_attempt_at = now + self.backoff.after(row.failures)
            row.error = " ".join(issued.split())[:ERROR_MAX]
            still_valid = row.tls == TlsStatus.ISSUED and row.expires_at is not None and row.expires_at > now
            if not still_valid:
                row.tls = TlsStatus.FAILED
            return f"{name}: failed ({row.error}); next attempt {row.next_attempt_at:%Y-%m-%d %H:%M:%S}"

    def _explain_off(self, domain_ids: list[int]) -> None:
        """Without an issuer, a pending domain says why it stays pending."""
        if not domain_ids:
            return
        with self.domains.store.session() as session:
            for row in session.scalars(select(Domain).where(Domain.id.in_(domain_ids))):
                if row.tls == TlsStatus.PENDING and row.error != ISSUER_OFF:
                    row.error = ISSUER_OFF
