"""Outbox delivery: the job dispatcher, webhook signing, approval calls, e-mail and the keyring."""
