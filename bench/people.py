"""What computing a person's rights at each request costs, against a team token's lookup.

A team token is one row read by id. A personal token also reads its user, their
memberships and teams, so that a removed member loses a team's rights on their next
request. This times ``authenticate`` for both, alternating rounds, on a fresh SQLite
store, and prints the ratio (personal / team). Bounded: 10 rounds of 500 calls each.

    .venv/bin/python bench/people.py [--teams 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from podium.catalog.auth import Actor, authenticate
from podium.catalog.models import PLATFORM_TEAM
from podium.config import Settings
from podium.core import Podium
from podium.store.db import utcnow

ROUNDS, CALLS = 10, 500


def per_call(core: Podium, token: str) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        with core.store.session() as session:
            authenticate(session, token)
    return (time.perf_counter() - start) / CALLS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=5, help="Teams the person is a member of.")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pd-bench-people-"))
    try:
        core = Podium(Settings(data_dir=base))
        core.start()
        admin = Actor(team=PLATFORM_TEAM, team_id=1, token_id=None)
        core.people.create_user(admin, "ada", "ada@example.com")
        for n in range(args.teams):
            core.catalog.create_team(admin, f"team-{n}")
            core.people.add_member(admin, f"team-{n}", "ada")
        _, team_token = core.catalog.create_token(admin, "team-0", name="ci")
        _, personal = core.people.create_token(admin, "ada", name="bench", expires_at=utcnow() + timedelta(days=30))
        team_times, person_times = [], []
        for _ in range(ROUNDS):
            team_times.append(per_call(core, team_token))
            person_times.append(per_call(core, personal))
        team_median, person_median = statistics.median(team_times), statistics.median(person_times)
        print(f"authenticate, team token (baseline):           {team_median * 1e6:8.1f} µs/request")
        print(f"authenticate, personal token ({args.teams} teams):        {person_median * 1e6:8.1f} µs/request")
        print(f"ratio personal / team: {person_median / team_median:.2f}x  ({ROUNDS} rounds of {CALLS} calls, medians)")
        core.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
