"""Read models: the documents answers are built from, for the API and the pages alike.

Each function reads through services and shapes what it finds; none writes, commits or
looks at the request. ``api/`` and ``pages/`` import from here, never from each other.
"""
