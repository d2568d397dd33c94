"""Leaves: input checks, configuration from the environment, secret redaction, the one `Clock`."""
