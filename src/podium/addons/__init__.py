"""Database add-ons: a PostgreSQL database per service environment, its backups and its care.

``postgres`` is the server (an existing one, or a cluster Podium runs) and the SQL that
provisions a database; ``backups`` dumps, checks and restores files; ``crypto`` seals
URLs at rest; ``service`` holds the verbs; ``care`` the background work (probes that page
the platform team, daily backups, retention, storage samples for billing). See
``docs/addons.md``.
"""
