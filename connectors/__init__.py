"""Built-in connectors; each is a folder with its plugin object, its sandbox and nothing more."""
