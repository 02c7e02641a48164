"""`python -m worker`: the same as `meet-telephony worker`."""

from worker.app import main

main()
