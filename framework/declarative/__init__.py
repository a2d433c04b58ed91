"""Declarative specs: the spec file, dates and numbers in one form, mappings to a shared model."""
