"""Destinations: the write loop every destination shares: batches, flushes, STATE after commit."""
