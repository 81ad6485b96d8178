"""rotation-picker: ``sanic server:app --workers N`` serves it with configuration from the environment."""

from backend.app import create_app

app = create_app()
