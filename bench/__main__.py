"""`python -m bench`: the whole benchmark set (bench/run.py)."""

from bench.run import main

main()
