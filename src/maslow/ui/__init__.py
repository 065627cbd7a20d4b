"""The review web UI: label-error findings (ISSUES.json) reviewed in a browser, decisions kept in the database.

``maslow.ui.state.Review`` holds a review (no web imports); ``maslow.ui.app.create_app(review)`` serves it with
FastAPI (the ``serve`` extra: ``pip install 'maslow[serve]'``); ``maslow review ISSUES.json --gt GT`` runs it.
"""
