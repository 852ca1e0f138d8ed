"""Offline stand-in for the get-pip.py that ansible-test downloads.

ansible-test runs this script with the interpreter of each sanity venv it
creates. We bootstrap pip with ensurepip and then install what ansible-test
asked for. ansible-test sets PIP_CONFIG_FILE=/dev/null, which would hide this
machine's package index configuration, so it is removed for the install.
"""

from __future__ import annotations

import os
import subprocess
import sys

subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], check=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
env = {k: v for k, v in os.environ.items() if k != "PIP_CONFIG_FILE"}
if args:
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True, env=env)
