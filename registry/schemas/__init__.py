"""marshmallow shapes only: no queries, no commits."""
