"""HTTP resources: parse, authorise, call one service, commit, return."""
