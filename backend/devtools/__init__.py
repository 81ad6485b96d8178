"""Developer tools: the deterministic demo catalog, its PostgreSQL seed and a local LML fake."""
