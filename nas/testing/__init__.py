"""Support for testing nas itself and the infrastructure around it (fault injection)."""
