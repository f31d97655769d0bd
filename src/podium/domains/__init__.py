"""Custom domains: hostnames a team routes to one of its service environments, and their
certificates (uploaded, or issued and renewed over ACME by a ``podium.tls.CertificateIssuer``).
See ``docs/domains.md``."""
