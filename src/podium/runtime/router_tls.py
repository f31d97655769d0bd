"""The router's server blocks for a route's custom domains: HTTPS by SNI, and the redirect.

A custom domain with a certificate the router can read gets a TLS server of its own on the
TLS port (nginx picks it by the name the client sends, SNI), and its plain-HTTP requests
are answered with a 301 to HTTPS. One without a certificate (pending, failed, or whose
files are missing) is served on plain HTTP beside the route's generated hostnames: a
certificate that is not there never makes ``nginx -t`` fail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from podium.runtime.interface import CustomDomain
from podium.runtime.naming import url_host


def listen_address(host: str, port: int) -> str:
    """``host:port`` as nginx's ``listen`` takes it (an IPv6 address in brackets)."""
    return f"{url_host(host)}:{port}"


def servable(domain: CustomDomain) -> bool:
    """Whether the router can serve ``domain`` over TLS: both of its PEM files are readable."""
    if domain.certificate is None or domain.key is None:
        return False
    try:
        return domain.certificate.stat().st_size > 0 and domain.key.stat().st_size > 0
    except OSError:
        return False


def tls_servers(
    route: str, domains: Sequence[CustomDomain], http_listen: str, tls_listen: str, tls_port: int, *,
    challenge: str = "",
) -> str:
    """The redirect server on the HTTP port for ``domains``, and one TLS server each; every
    domain given must be ``servable``. ``challenge`` is the ACME challenge location, which
    the redirect server keeps answering over plain HTTP (renewals are validated there)."""
    if not domains:
        return ""
    port = "" if tls_port == 443 else f":{tls_port}"
    blocks = [f"""
server {{
    listen {http_listen};
    server_name {" ".join(domain.name for domain in domains)};
    set $podium_route {route};
{challenge}
    location / {{
        return 301 https://$host{port}$request_uri;
    }}
}}
"""]
    # First on the TLS port in this site: a client asking for no name, or one no certificate is
    # for, has its handshake refused rather than get some domain's certificate. The first site
    # with TLS servers (in nginx's include order) makes its block the port's default server; the
    # others are unreachable, each named apart so that nginx sees no conflicting names.
    blocks.append(f"""
server {{
    listen {tls_listen} ssl;
    server_name podium-no-such-name.{route}.invalid;
    ssl_reject_handshake on;
}}
""")
    for domain in domains:
        blocks.append(f"""
server {{
    listen {tls_listen} ssl;
    server_name {domain.name};
    ssl_certificate {domain.certificate};
    ssl_certificate_key {domain.key};
    set $podium_route {route};

    location / {{
        proxy_pass http://podium_{route};
    }}
}}
""")
    return "".join(blocks)


def dump_domains(domains: Sequence[CustomDomain]) -> str:
    """The route's custom domains as the router keeps them (``domains/<route>.json``)."""
    return json.dumps([
        {"name": d.name, "certificate": str(d.certificate) if d.certificate else None,
         "key": str(d.key) if d.key else None}
        for d in domains
    ], indent=1) + "\n"


def load_domains(path: Path) -> list[CustomDomain]:
    """What ``dump_domains`` wrote to ``path``; none when the file is absent."""
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [
        CustomDomain(entry["name"], Path(entry["certificate"]) if entry["certificate"] else None,
                     Path(entry["key"]) if entry["key"] else None)
        for entry in entries
    ]
