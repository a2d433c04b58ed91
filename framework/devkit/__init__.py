"""The dev kit: sandboxes and their faults, the standard tests, the plugin scaffold."""
