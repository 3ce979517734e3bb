import os
import sys

code = None
if os.environ.get("GLORA_WORKER"):  # a start-up worker is named: hand the stage to it (glora/worker.py)
    from glora.worker import forward

    code = forward(sys.argv[1:])  # None: it cannot run it here (refused, absent, a SLURM job): run it below
if code is None:
    from glora.cli import main

    code = main()
raise SystemExit(code)
