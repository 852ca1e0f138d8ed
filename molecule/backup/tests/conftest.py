from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))

# The shared server and server_ip fixtures, registered by importing them here.
from fixtures import server, server_ip

__all__ = ["server", "server_ip"]
