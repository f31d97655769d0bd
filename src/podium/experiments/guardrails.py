"""Guardrails: a running experiment that hurts stops by itself, and its team is paged with why.

Every ``experiments_guardrail_interval`` seconds, each running experiment is looked at:

- an **incident** open (triggered or acknowledged) on its service, in its environment or in
  all of them, triggered after the experiment started: the experiment may be the cause, and
  stopping it is cheap;
- each **guardrail metric** (a metric where more is worse, e.g. ``error``): a variant whose
  share of users with at least one such event, at or after their first exposure, is higher
  than the control's by a one-sided pooled two-proportion z-test with
  ``p < experiments_guardrail_p``, once both have ``MIN_USERS`` users.

Either stops it through ``stop_running`` (``stopped_by = "guardrail"``, the reason names the
incident, or the metric, variant, rates and p-value), so everyone gets the control, and in
the same transaction writes a page to the owning team's on-call person into the pager's
outbox (linked to the incident when there is one); the pager's worker sends it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from podium.catalog.models import Environment, Service, Team
from podium.config import Settings
from podium.experiments import stats
from podium.experiments.models import Experiment, ExperimentStatus, MetricKind
from podium.experiments.results import aggregate, binomial_data, one_sided_worse
from podium.experiments.service import stop_running
from podium.experiments.tally import Tally
from podium.health.models import Incident, IncidentState, Notification, Rotation, RotationOverride
from podium.health.oncall import who_is_on_call
from podium.health.paging import NO_ROTATION, RECIPIENT_MAX, TITLE_MAX, Pager
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)

GUARDRAIL = "guardrail"
"""``stopped_by`` of an experiment a guardrail stopped, and the ``kind`` of its page."""

MIN_USERS = stats.MIN_USERS_PER_VARIANT
"""Users the control and a variant each need before a guardrail metric can stop the experiment."""


@dataclass(frozen=True, slots=True)
class Trip:
    """Why an experiment must stop: the reason shown everywhere, and the incident if one caused it."""

    reason: str
    incident_id: int | None = None


@dataclass(frozen=True, slots=True)
class Stopped:
    """An experiment a guardrail stopped."""

    service: str
    env: str
    key: str
    reason: str
    incident_id: int | None


def incident_trip(session: Session, experiment: Experiment, environment: Environment) -> Trip | None:
    """The earliest open incident on the experiment's service environment triggered after it started."""
    if experiment.started_at is None:
        return None
    incident = session.scalar(
        select(Incident)
        .where(
            Incident.service_id == environment.service_id,
            Incident.state != IncidentState.RESOLVED,
            Incident.triggered_at >= experiment.started_at,
            or_(Incident.environment.is_(None), Incident.environment == environment.name),
        )
        .order_by(Incident.triggered_at, Incident.id)
        .limit(1)
    )
    if incident is None:
        return None
    return Trip(f"incident #{incident.id} opened on {environment.service.name}/{environment.name} "
                f"while the experiment ran: {incident.summary}", incident.id)


def guardrail_data(
    session: Session, experiment: Experiment, names: list[str], tally: Tally | None
) -> dict[str, list[stats.VariantData]]:
    """Per guardrail metric, each variant's users and users with one: from the tally, brought up to date, if given."""
    if tally is not None:
        tally.update(session)
        users, hits = tally.counts()
        return {name: [stats.VariantData(v, users[i], hits[name][i]) for i, v in enumerate(tally.variants)]
                for name in names}
    aggregates = aggregate(session, experiment, dict.fromkeys(names, str(MetricKind.BINOMIAL)))
    groups = {v: aggregates.everyone(v) for v in aggregates.variants}
    return {name: binomial_data(groups, aggregates.variants, name) for name in names}


def metric_trip(
    session: Session, experiment: Experiment, p_threshold: float, tally: Tally | None = None
) -> Trip | None:
    """The guardrail metric and variant most significantly worse than the control, if one is below the threshold."""
    names = [g for g in experiment.guardrails if isinstance(g, str)]
    if not names:
        return None
    data = guardrail_data(session, experiment, names, tally)
    worst: tuple[float, str] | None = None
    for name in names:
        control, *treatments = data[name]
        for treatment in treatments:
            if control.users < MIN_USERS or treatment.users < MIN_USERS:
                continue
            p = one_sided_worse(control, treatment)
            if p is None or p >= p_threshold or (worst is not None and p >= worst[0]):
                continue
            worst = (p, (
                f"guardrail {name!r} is worse in variant {treatment.name!r}: "
                f"{_share(treatment)} of its users had one, against {_share(control)} in {control.name!r} "
                f"(one-sided p = {p:.2g} < {p_threshold:g})"
            ))
    return Trip(worst[1]) if worst is not None else None


def _share(data: stats.VariantData) -> str:
    return f"{data.conversions / data.users:.2%} ({data.conversions:,} of {data.users:,})"


def page_team(
    session: Session, team_id: int, title: str, body: str, now: datetime, incident_id: int | None = None
) -> Notification:
    """Write a page to the team's on-call person into the pager's outbox, sent once the session commits.

    A team without a rotation gets a row saying nobody was paged, never retried, as the
    pager does for incidents.
    """
    team = session.get(Team, team_id)
    rotation = session.scalar(select(Rotation).where(Rotation.team_id == team_id))
    if rotation is None or not rotation.members:
        name = team.name if team is not None else str(team_id)
        row = Notification(
            incident_id=incident_id, kind=GUARDRAIL, recipient=NO_ROTATION, url="", title=title, body=body,
            created_at=now, next_attempt_at=now,
            last_error=f"team {name!r} has no on-call rotation, so nobody was paged: "
            f"set one with `podium oncall set --team {name}`",
        )
    else:
        overrides = list(session.scalars(select(RotationOverride).where(
            RotationOverride.rotation_id == rotation.id, RotationOverride.ends_at > now)))
        person = who_is_on_call(rotation, overrides, now).current
        row = Notification(
            incident_id=incident_id, kind=GUARDRAIL, recipient=person.name[:RECIPIENT_MAX], url=person.url,
            title=title, body=body, created_at=now, next_attempt_at=now,
        )
    session.add(row)
    return row


def check_experiment(
    session: Session, experiment: Experiment, settings: Settings, now: datetime, tally: Tally | None = None
) -> Stopped | None:
    """Stop one running experiment if a guardrail trips, and page its team, in ``session``."""
    environment = session.get(Environment, experiment.environment_id)
    if environment is None or experiment.status != ExperimentStatus.RUNNING:
        return None
    trip = incident_trip(session, experiment, environment) or metric_trip(
        session, experiment, settings.experiments_guardrail_p, tally
    )
    if trip is None or not stop_running(session, experiment, GUARDRAIL, trip.reason):
        return None
    service: Service = environment.service
    where = f"{service.name}/{environment.name}"
    link = f"{settings.base_url.rstrip('/')}/services/{service.name}/environments/{environment.name}/experiments/"
    title = f"[Podium] Experiment {experiment.key} on {where} stopped by a guardrail"
    body = (
        f"Stopped: experiment {experiment.key!r} on {where}; "
        f"everyone gets the control ({experiment.variants[0]!r}).\n"
        f"Why: {trip.reason}\n\n{link}{experiment.key}\n"
        f"Decide when you know more: podium experiments decide {experiment.key} --service {service.name} "
        f"--env {environment.name}"
    )
    page_team(session, service.owner_id, title[:TITLE_MAX], body, now, trip.incident_id)
    return Stopped(service.name, environment.name, experiment.key, trip.reason, trip.incident_id)


def check_guardrails(
    store: Store, settings: Settings, now: datetime | None = None, tallies: dict[int, Tally] | None = None
) -> list[Stopped]:
    """Look at every running experiment once; the ones stopped. Each is checked in its own transaction.

    ``tallies`` keeps each running experiment's guardrail counts from one round to the next,
    so a round reads only the events stored since the last one; without it, every round
    aggregates every event.
    """
    moment = now or utcnow()
    with store.session() as session:
        running = list(session.scalars(select(Experiment.id).where(Experiment.status == ExperimentStatus.RUNNING)))
    if tallies is not None:
        for gone in set(tallies) - set(running):
            del tallies[gone]
    stopped = []
    for experiment_id in running:
        try:
            with store.session() as session:
                experiment = session.get(Experiment, experiment_id)
                if experiment is None:
                    continue
                tally = None
                if tallies is not None:
                    tally = tallies.get(experiment_id)
                    if tally is None or not tally.fits(experiment):
                        tally = tallies[experiment_id] = Tally.of(experiment)
                done = check_experiment(session, experiment, settings, moment, tally)
        except Exception:  # one experiment's failure must not spare the others
            log.exception("guardrails: checking experiment %s failed", experiment_id)
            continue
        if done is not None:
            log.warning("guardrails: stopped %s/%s %s: %s", done.service, done.env, done.key, done.reason)
            stopped.append(done)
    return stopped


class Guardrails:
    """The background loop: ``check_guardrails`` every ``experiments_guardrail_interval`` seconds until closed."""

    def __init__(self, settings: Settings, store: Store, pager: Pager | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.pager = pager
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tallies: dict[int, Tally] = {}  # per running experiment, kept between rounds

    def check(self) -> list[Stopped]:
        """One look at every running experiment; wakes the pager when a page was written."""
        stopped = check_guardrails(self.store, self.settings, self.clock(), self.tallies)
        if stopped and self.pager is not None:
            self.pager.wake()
        return stopped

    def start(self) -> None:
        """Start the loop in a thread; the first look comes after one interval."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="guardrails", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.experiments_guardrail_interval):
            try:
                self.check()
            except Exception:  # the store may be away: the next round tries again
                log.exception("guardrails: a round failed; trying again in %gs",
                              self.settings.experiments_guardrail_interval)

    def close(self) -> None:
        """Stop the loop; a round in progress finishes its current experiment first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
