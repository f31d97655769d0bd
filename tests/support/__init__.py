"""Shared test support: real servers started for the tests."""
