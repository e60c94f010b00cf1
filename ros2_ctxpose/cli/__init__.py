"""The `ctxpose` command line: thin wrappers over the core (infer, eval, train, bench)."""
