"""The control-plane store: SQLAlchemy tables, engine, and Alembic migrations."""

from podium.store.db import Base, Store, utcnow

__all__ = ["Base", "Store", "utcnow"]
