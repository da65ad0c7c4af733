"""Small helpers shared by every package: atomic file writes."""
