"""Podium's application SDK: experiments and flags evaluated in the app, events sent back.

    from podium.sdk import Client

    podium = Client()  # PODIUM_URL, PODIUM_TOKEN, PODIUM_SERVICE, PODIUM_ENV: set for deployed apps
    if podium.variant("big-button", user_id) == "treatment":
        ...
    podium.track(user_id, "signup")

Standard library only (and ``podium.experiments.assign/evaluate/conditions``); the
OpenFeature provider lives in ``podium.sdk.openfeature`` and needs ``openfeature-sdk``.
"""

from podium.sdk.client import Client

__all__ = ["Client"]
