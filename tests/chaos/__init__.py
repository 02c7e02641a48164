"""The whole-system chaos suite (issue 11): `python -m tests.chaos --seed N --rooms R --steps S`.

`generator` (the seeded scenario), `processes` (Temporal, the LiveKit emulator, two workers, two
gateways as real processes), `faults`, `model` (what the backend was told), `invariants` (the
four checks against LiveKit's own state), `runner` (one run). See docs/CHAOS.md.
"""
