"""Listeners: open resources before a worker serves, close them after it stops."""
