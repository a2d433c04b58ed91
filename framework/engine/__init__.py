"""The HTTP engine: the paced client, pages read in slices, the declarative source."""
