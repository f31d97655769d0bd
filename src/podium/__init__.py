"""Podium: a self-hosted platform a platform team runs for its product teams."""

__version__ = "0.1.0"
