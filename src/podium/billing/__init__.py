"""Billing: usage meters, a dated price sheet, and monthly invoices per team.

Meters write usage records (``models.UsageRecord``), each with a start and an end, to the
second; ``prices`` reads the TOML price sheet; ``invoice`` turns records and a sheet into
invoices (pure); ``service`` holds the verbs and the metering job.
"""
