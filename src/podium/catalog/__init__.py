"""Teams, tokens, services with exactly one owning team, grants, and the audit log."""
