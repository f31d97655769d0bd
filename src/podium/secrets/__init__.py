"""Secrets at rest: rotating the key that seals config vars in the store."""
