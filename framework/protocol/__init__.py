"""The Airbyte protocol: messages, records against schemas, catalogs, configs, state."""
