"""Certificates issued over ACME (RFC 8555) with HTTP-01 challenges, by certbot's ``acme`` library.

One issuance tells this story:

1. the account: its key is made once and kept in ``<data dir>/tls/account.key`` (0600); the
   account is looked up by that key, and registered only when the server knows none;
2. a new order for the names;
3. each authorization's HTTP-01 key authorization written to ``<challenge dir>/<token>``,
   which the router serves to every host at ``/.well-known/acme-challenge/<token>``, and
   the challenge answered: the ACME server fetches it through port 80 of each name;
4. the authorizations polled, then the order finalized with a fresh key and its CSR, both
   bounded by one deadline (``timeout``);
5. the full chain downloaded; the token files removed whatever happened.

Whatever fails becomes ``IssuanceFailed`` with one readable line: the problem the ACME
server reported (a validation error says what it fetched and what it got), or what kept
this node from reaching the server.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

import josepy as jose
import requests
from acme import challenges, crypto_util, errors, messages
from acme.client import ClientNetwork, ClientV2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwa import RS256
from josepy.jwk import JWKRSA

from podium.osutil import write_private
from podium.tls import IssuanceFailed, IssuedCertificate

if TYPE_CHECKING:
    from podium.config import Settings

log = logging.getLogger(__name__)

ACCOUNT_KEY_BITS = 2048
USER_AGENT = "podium"
NETWORK_TIMEOUT = 30  # seconds, at most, for one HTTP request to the ACME server
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")  # base64url, as RFC 8555 says: never a path
MAX_REASON = 400
# What the library and the network raise; anything else is a bug and keeps its traceback.
FAILURES = (
    errors.Error, messages.Error, requests.RequestException, jose.errors.Error, ValueError, OSError,
)


class AcmeIssuer:
    """A ``CertificateIssuer`` that asks an ACME server (Let's Encrypt, a company's CA, pebble).

    ``tls_dir`` keeps the account key; ``challenge_dir`` is the folder the router serves at
    ``/.well-known/acme-challenge/``. ``ca_bundle`` is a PEM file of the CAs to trust for
    the server's own HTTPS API (default: the system's). ``timeout`` bounds one issuance.
    Thread-safe: issuances may run at once, the account is set up once.
    """

    def __init__(
        self, directory_url: str, tls_dir: Path, challenge_dir: Path, *, email: str | None = None,
        ca_bundle: Path | None = None, timeout: float = 90.0,
    ) -> None:
        self.directory_url = directory_url
        self.tls_dir = tls_dir
        self.challenge_dir = challenge_dir
        self.email = email
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self._account: messages.RegistrationResource | None = None
        self._account_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> AcmeIssuer | None:
        """The issuer the settings describe; None when ``acme_directory_url`` is empty."""
        if not settings.acme_directory_url.strip():
            return None
        return cls(
            settings.acme_directory_url.strip(), settings.tls_dir, settings.acme_challenge_dir,
            email=settings.acme_email or None, ca_bundle=settings.acme_ca_bundle, timeout=settings.acme_timeout,
        )

    @property
    def account_key_path(self) -> Path:
        return self.tls_dir / "account.key"

    @property
    def account_url(self) -> str | None:
        """The account's URL at the ACME server, once an issuance has set it up."""
        return self._account.uri if self._account is not None else None

    def issue(self, names: list[str]) -> IssuedCertificate:
        """A certificate for every name in ``names`` (the first one is its subject), valid
        for each once the ACME server has fetched its HTTP-01 token through the router;
        ``IssuanceFailed`` with the reason otherwise."""
        names = list(dict.fromkeys(name.strip().lower().rstrip(".") for name in names))
        if not names or not all(names):
            raise IssuanceFailed("a certificate needs at least one name")
        deadline = time.monotonic() + self.timeout
        tokens: list[Path] = []
        try:
            client = self._client()
            key_pem = _new_certificate_key()
            order = client.new_order(crypto_util.make_csr(key_pem, names))
            for authorization in order.authorizations:
                if authorization.body.status != messages.STATUS_VALID:  # a valid one is reused as is
                    tokens.append(self._answer(client, authorization))
            remaining = max(deadline - time.monotonic(), 0.0)
            order = client.poll_and_finalize(order, datetime.datetime.now() + datetime.timedelta(seconds=remaining))
            chain_pem = order.fullchain_pem.encode()
        except IssuanceFailed:
            raise
        except FAILURES as error:
            if isinstance(error, messages.Error) and error.code == "accountDoesNotExist":
                self._account = None  # the server forgot it (a reset CA): look it up again next time
            raise IssuanceFailed(self._reason(error)) from error
        except Exception as error:  # a library bug or an answer it did not expect: still one line
            log.exception("ACME issuance for %s failed unexpectedly", ", ".join(names))
            raise IssuanceFailed(_one_line(f"unexpected failure talking to the ACME server: {error!r}")) from error
        finally:
            for token in tokens:
                token.unlink(missing_ok=True)
        try:
            leaf = x509.load_pem_x509_certificates(chain_pem)[0]
        except ValueError as error:
            raise IssuanceFailed("the ACME server sent a certificate chain that cannot be read") from error
        return IssuedCertificate(chain_pem=chain_pem, key_pem=key_pem, not_after=leaf.not_valid_after_utc)

    # -- the account -------------------------------------------------------------------

    def _client(self) -> ClientV2:
        """A client of the directory, signed in with the account (set up on first use)."""
        key, known = self._account_key()
        network = ClientNetwork(key, alg=RS256, user_agent=USER_AGENT, timeout=self._network_timeout())
        if self.ca_bundle is not None:
            # requests takes a CA file where the library's annotation says bool.
            network.verify_ssl = cast(bool, str(self.ca_bundle))
        try:
            directory = ClientV2.get_directory(self.directory_url, network)
        except (ValueError, jose.errors.Error, errors.ClientError) as error:
            raise IssuanceFailed(f"{self.directory_url} does not answer as an ACME directory") from error
        client = ClientV2(directory, network)
        with self._account_lock:
            if self._account is None:
                self._account = self._find_or_register(client, known)
        network.account = self._account
        return client

    def _find_or_register(self, client: ClientV2, known: bool) -> messages.RegistrationResource:
        """The account of this key: looked up when the key is an old one, registered otherwise
        (or when the server has forgotten it)."""
        if known:
            try:
                return client.query_registration(messages.RegistrationResource(body=messages.Registration()))
            except messages.Error as error:
                if error.code != "accountDoesNotExist":
                    raise
        registration = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
        try:
            return client.new_account(registration)
        except errors.ConflictError as existing:  # registered meanwhile, by another process
            found = messages.RegistrationResource(uri=existing.location, body=messages.Registration())
            return client.query_registration(found)

    def _account_key(self) -> tuple[JWKRSA, bool]:
        """The account key, and whether it existed before (else it is made now, once)."""
        path = self.account_key_path
        known = path.exists()
        if not known:
            made = rsa.generate_private_key(public_exponent=65537, key_size=ACCOUNT_KEY_BITS)
            pem = made.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            write_private(partial, pem.decode())
            try:
                os.link(partial, path)  # another process may have made one first: its key wins
            except FileExistsError:
                known = True
            finally:
                partial.unlink(missing_ok=True)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise IssuanceFailed(f"{path} does not hold an RSA private key")
        return JWKRSA(key=key), known

    # -- one challenge -----------------------------------------------------------------

    def _answer(self, client: ClientV2, authorization: messages.AuthorizationResource) -> Path:
        """Write the authorization's HTTP-01 token where the router serves it and tell the
        server to fetch it; returns the token file (removed once the order is done)."""
        name = authorization.body.identifier.value
        offered = [c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)]
        if not offered:
            raise IssuanceFailed(f"{name}: the ACME server offers no HTTP-01 challenge")
        challenge = offered[0]
        token = str(challenge.chall.encode("token"))
        if not TOKEN_RE.fullmatch(token):
            raise IssuanceFailed(f"{name}: the ACME server sent a malformed challenge token")
        response, validation = challenge.response_and_validation(client.net.key)
        self.challenge_dir.mkdir(parents=True, exist_ok=True)
        path = self.challenge_dir / token
        # The router's workers may run as another user: the token must be readable by all.
        write_private(path, validation, mode=0o644)
        try:
            client.answer_challenge(challenge, response)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    # -- reasons -----------------------------------------------------------------------

    def _network_timeout(self) -> int:
        return max(1, min(NETWORK_TIMEOUT, int(self.timeout)))

    def _reason(self, error: BaseException) -> str:
        """One readable line saying why the issuance failed."""
        host = urlsplit(self.directory_url).netloc or self.directory_url
        if isinstance(error, errors.ValidationError):
            failures = [
                f"{authorization.body.identifier.value}: {_problem(challenge.error)}"
                for authorization in error.failed_authzrs
                for challenge in authorization.body.challenges
                if challenge.error is not None
            ]
            reason = f"validation failed: {'; '.join(failures)}"
        elif isinstance(error, errors.IssuanceError):
            reason = f"the order failed: {_problem(error.error)}"
        elif isinstance(error, errors.TimeoutError):
            reason = f"not issued within {self.timeout:g}s (the challenges or the order were still pending)"
        elif isinstance(error, messages.Error):
            reason = f"the ACME server refused: {_problem(error)}"
        elif isinstance(error, requests.exceptions.SSLError):
            reason = (
                f"the TLS certificate of the ACME server {host} cannot be verified "
                "(PODIUM_ACME_CA_BUNDLE names the CA of a private one)"
            )
        elif isinstance(error, requests.exceptions.Timeout):
            reason = f"the ACME server {host} did not answer within {self._network_timeout()}s"
        elif isinstance(error, requests.exceptions.ConnectionError):
            reason = f"cannot connect to the ACME server {host}: {_socket_reason(error)}"
        elif isinstance(error, requests.RequestException):
            reason = f"request to the ACME server {host} failed: {error}"
        elif isinstance(error, OSError):
            reason = f"{error.filename or 'a file'}: {error.strerror or error}"
        else:
            reason = f"unexpected answer from the ACME server {host}: {error}"
        return _one_line(reason)


def _new_certificate_key() -> bytes:
    """A fresh ECDSA P-256 key for one certificate, PEM (PKCS#8)."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _problem(problem: messages.Error) -> str:
    """An ACME problem document in words: its detail, else what its type means."""
    return problem.detail or problem.description or problem.typ or "no detail given"


def _socket_reason(error: requests.exceptions.ConnectionError) -> str:
    """The operating system's words from deep inside urllib3's wrapped error."""
    found = re.search(r"\[Errno -?\d+\] ([^'\"\)\]]+)", str(error))
    return found.group(1).strip() if found else "connection failed"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"
