"""Configuration: sections, loading, checks."""
