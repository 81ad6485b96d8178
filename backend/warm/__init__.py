"""Warming: every worker of every host answers every active row from memory, at the least LML cost.

- :mod:`~backend.warm.walk`: the walker (passes, retries, changed rows) and its counters.
- :mod:`~backend.warm.leader`: one walker per fleet, elected through PostgreSQL.
- :mod:`~backend.warm.host`: the walker's thread in Sanic's main process.
- :mod:`~backend.warm.follower`: a process loads the stored answers, then follows them.
- :mod:`~backend.warm.hints`: notifications that say what may have changed.

Results live in PostgreSQL (:mod:`backend.db.answers`), each with the inputs it was computed from.
"""
