"""`python -m detection.track`: the `detpipe track` command (detection.cli.track) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.track's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.track import main

    sys.exit(main(prog="python -m detection.track"))
