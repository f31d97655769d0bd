"""Artifacts: the slug a team hands Podium, checked before anything is unpacked.

A slug is a gzipped tar with the app under ``app/``, a ``Procfile`` and optionally an
``app.json`` and a ``requirements.txt``; ``docs/slug-format.md`` describes it.
"""

from podium.artifacts.appjson import AppJson, EnvVar, FormationEntry, HealthCheck, Scripts, parse_app_json
from podium.artifacts.build import ensure_venv
from podium.artifacts.pack import pack_directory
from podium.artifacts.procfile import RELEASE, parse_procfile
from podium.artifacts.slug import Slug, SlugLimits, inspect_slug, unpack_slug

__all__ = [
    "RELEASE",
    "AppJson",
    "EnvVar",
    "FormationEntry",
    "HealthCheck",
    "Scripts",
    "Slug",
    "SlugLimits",
    "ensure_venv",
    "inspect_slug",
    "pack_directory",
    "parse_app_json",
    "parse_procfile",
    "unpack_slug",
]
