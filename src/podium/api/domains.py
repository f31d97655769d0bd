"""Custom domain routes under ``/api/v1/services/{service}/environments/{env}/domains``.

Each route checks who asks and calls one ``DomainService`` verb.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES, RecordOut, fields_of
from podium.domains.service import DomainInfo

router = APIRouter(
    prefix="/api/v1/services/{service}/environments/{env}/domains", tags=["domains"], responses=ERROR_RESPONSES
)
PEM_MAX = 64 * 1024


class DomainIn(BaseModel):
    name: str = Field(max_length=300, description="The hostname, e.g. shop.example.com (not under the base domain).")
    certificate: str | None = Field(
        None, max_length=PEM_MAX, description="PEM certificate chain, the leaf first; with key. "
        "Without both, a certificate is issued over ACME."
    )
    key: str | None = Field(None, max_length=PEM_MAX, description="PEM private key of the certificate, unencrypted.")


@fields_of(DomainInfo)
class DomainOut(RecordOut):
    """A custom domain of a service environment and the state of its certificate."""

    tls: str = Field(description="pending | issued | uploaded | failed")
    error: str = Field(description="Why the last issuance failed (empty when it did not).")
    expires_at: datetime | None = Field(description="When the certificate expires.")
    next_attempt_at: datetime | None = Field(description="When a failed issuance is tried again.")


def domain_out(info: DomainInfo) -> DomainOut:
    return DomainOut.model_validate(info)


@router.get("")
def list_domains(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> list[DomainOut]:
    """The environment's custom domains, by name."""
    return [domain_out(d) for d in podium.domains.list_domains(service, env)]


@router.post("", status_code=status.HTTP_201_CREATED)
def add_domain(service: str, env: str, body: DomainIn, podium: PodiumDep, actor: ActorDep) -> DomainOut:
    """Route a domain to the environment; with a certificate and key (checked first), HTTPS at once."""
    certificate = body.certificate.encode() if body.certificate is not None else None
    key = body.key.encode() if body.key is not None else None
    return domain_out(podium.domains.add(actor, service, env, body.name, certificate, key))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_domain(service: str, env: str, name: str, podium: PodiumDep, actor: ActorDep) -> Response:
    """Stop routing the domain and delete its certificate."""
    podium.domains.remove(actor, service, env, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
