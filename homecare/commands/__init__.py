"""Commands: the ``homecare`` subcommands, one module per group; ``homecare.cli`` dispatches."""
