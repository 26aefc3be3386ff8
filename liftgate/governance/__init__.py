"""Governed actions: consent, offers, checks, the action store and its outbox, creatives,
erasure and retention. Below serving (which calls it) and beside drift; above the logs."""
