"""`detpipe`: the one command. Each job is a subcommand; its module is imported only when it runs.

The top floor: it names the command modules of serve, detection and datasets, and imports none of them up front.
"""
