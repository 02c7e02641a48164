"""`python -m webhook_gateway`: the same as `meet-telephony gateway`."""

import sys

from telephony.cli import run_as_process

run_as_process(["gateway", *sys.argv[1:]])
