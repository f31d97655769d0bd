"""Availability: health checks, incidents, on-call rotations and paging."""
