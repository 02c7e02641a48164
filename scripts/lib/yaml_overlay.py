"""Print BASE (a YAML file) with the YAML document read on stdin laid over it.

    python scripts/lib/yaml_overlay.py deploy/livekit.yaml <overlay.yaml >rendered.yaml

Mappings merge key by key, recursively; any other overlay value replaces the base's; a null in
the overlay removes the key. Used by scripts/livekit-real.sh to run the compose file's LiveKit
config (deploy/livekit.yaml) with loopback ports, keys and test timeouts.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml


def overlay(base: Any, over: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    merged = dict(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = overlay(base.get(key), value)
    return merged


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        base = yaml.safe_load(f) or {}
    over = yaml.safe_load(sys.stdin) or {}
    yaml.safe_dump(overlay(base, over), sys.stdout, sort_keys=False, default_flow_style=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
