"""`python -m detection.inspect`: the `detpipe inspect` command (detection.cli.inspect) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.inspect's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.inspect import main

    sys.exit(main(prog="python -m detection.inspect"))
