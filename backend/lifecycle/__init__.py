"""Process lifecycle under ``sanic --workers N``: stop signals, worker supervision and orphan prevention."""
