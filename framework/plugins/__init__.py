"""The plugin API: what a connector is, how the runner finds one, its verbs and its Airbyte CLI."""
