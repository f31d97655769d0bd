"""An OpenFeature provider over ``podium.sdk.Client`` (needs the ``openfeature-sdk`` package).

    from openfeature import api
    from podium.sdk import Client
    from podium.sdk.openfeature import PodiumProvider

    api.set_provider(PodiumProvider(Client()))
    flags = api.get_client()
    context = EvaluationContext(targeting_key=user_id, attributes={"country": "FR"})
    flags.get_boolean_value("new-checkout", False, context)
    flags.get_string_value("big-button", "control", context)  # an experiment's variant

Flags resolve with their own type (a value of another type is a TYPE_MISMATCH and gives
the default). Experiments read as string flags keyed by the experiment key: the user's
variant (logging an exposure as ``Client.variant`` does), or the default when the user is
not in it; a flag with the same key wins. The targeting key is the user id; the other
context attributes are the user's attributes. ``track`` sends a metric event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from podium.sdk.client import Client

T = TypeVar("T")

_REASONS = {
    "disabled": Reason.DISABLED,
    "rule": Reason.TARGETING_MATCH,
    "rollout": Reason.SPLIT,
    "default": Reason.DEFAULT,
}


def _user(context: EvaluationContext | None) -> tuple[str | None, dict[str, Any]]:
    if context is None:
        return None, {}
    return context.targeting_key, dict(context.attributes)


class PodiumProvider(AbstractProvider):
    """Resolves OpenFeature flags from a Podium client's definitions, locally."""

    def __init__(self, client: Client, *, ready_timeout: float = 5.0) -> None:
        super().__init__()
        self.client = client
        self.ready_timeout = ready_timeout

    def get_metadata(self) -> Metadata:
        return Metadata(name="Podium")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        # Wait a little for the first definitions; until they come, answers are the defaults.
        self.client.wait_ready(self.ready_timeout)

    def shutdown(self) -> None:
        self.client.close()

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        user_id, attributes = _user(evaluation_context)
        if user_id is None:
            return
        value = tracking_event_details.value if tracking_event_details is not None else None
        self.client.track(user_id, tracking_event_name, 1.0 if value is None else value, attributes or None)

    def _resolve(
        self, key: str, default: T, context: EvaluationContext | None, accepts: tuple[type, ...], *, variants: bool
    ) -> FlagResolutionDetails[T]:
        if not self.client.ready:
            return FlagResolutionDetails(
                default, ErrorCode.PROVIDER_NOT_READY, "no definitions from Podium yet", Reason.ERROR
            )
        user_id, attributes = _user(context)
        evaluator = self.client.evaluator
        answer = evaluator.flag_answer(key, user_id or "", attributes or None)
        if answer is not None:
            value = answer.value
            if isinstance(value, int) and not isinstance(value, bool) and float in accepts and int not in accepts:
                value = float(value)
            if not isinstance(value, accepts) or (isinstance(value, bool) and bool not in accepts):
                return FlagResolutionDetails(
                    default, ErrorCode.TYPE_MISMATCH, f"flag {key!r} is {type(value).__name__}", Reason.ERROR
                )
            return FlagResolutionDetails(cast(T, value), reason=_REASONS.get(answer.reason, Reason.UNKNOWN))
        if variants and evaluator.has_experiment(key):
            if user_id is None:
                return FlagResolutionDetails(
                    default, ErrorCode.TARGETING_KEY_MISSING, "an experiment needs a targeting key", Reason.ERROR
                )
            variant = self.client.variant(key, user_id, attributes or None)
            if variant is None:
                return FlagResolutionDetails(default, reason=Reason.DEFAULT)
            return FlagResolutionDetails(cast(T, variant), reason=Reason.SPLIT, variant=variant)
        return FlagResolutionDetails(default, ErrorCode.FLAG_NOT_FOUND, f"no flag {key!r}", Reason.ERROR)

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,), variants=False)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,), variants=True)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,), variants=False)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float,), variants=False)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list), variants=False)
