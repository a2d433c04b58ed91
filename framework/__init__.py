"""tajo-connectors framework: the Airbyte protocol, declarative HTTP sources, plugins, runner."""
