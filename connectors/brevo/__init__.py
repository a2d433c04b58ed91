"""Brevo: the destination's local API emulator (the destination itself is being built)."""
