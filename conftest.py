"""Repo-root pytest configuration: make the source tree importable without installing.

`sm3_tf` lives at the repository root and the T2T-style layer is the package `sm3_t2t` in
`models/sm3_t2t` (setup.py maps it there), so both directories go to the front of sys.path;
the front, so that the working tree wins over any installed copy.
"""

import os
import sys

_REPO_ROOT = os.path.dirname(os.path.abspath(__file__))

for _path in (os.path.join(_REPO_ROOT, "models"), _REPO_ROOT):
    if _path in sys.path:
        sys.path.remove(_path)
    sys.path.insert(0, _path)
