"""Deploys: immutable releases of a slug plus config, rolled out health-gated with zero downtime."""
