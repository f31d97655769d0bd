"""The swarm runtime: releases as Docker Swarm services, routed by nginx services inside
the swarm's overlay networks (see ``runtime`` and docs/swarm.md)."""
