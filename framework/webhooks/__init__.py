"""Webhooks: subscriptions kept in step with a config, the receiver, its limits, the spool."""
