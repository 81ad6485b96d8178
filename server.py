"""rotation-picker entry point.

``sanic server:app --workers N`` serves it with configuration from the environment;
``python server.py`` runs the self-contained demo (embedded PostgreSQL, LML fake, N workers).
"""

from backend.app import create_app

if __name__ == "__main__":
    from backend.devtools.demo import main

    raise SystemExit(main())

app = create_app()
