"""`python -m sandbox.worker ROOT [--device D]`: one experiment's worker process (see `server`)."""

from sandbox.worker.server import main

main()
