"""Several Podium servers on one PostgreSQL store: a leader lease, and what survives a server's death."""
