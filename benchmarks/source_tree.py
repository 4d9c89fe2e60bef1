"""Makes the project importable from a source checkout: `import source_tree` first.

The benchmarks run as plain scripts (`python benchmarks/bench_memory.py`), from an installed
package or straight from the tree; this puts the tree's `sm3_tf` and `models/sm3_t2t` ahead on
`sys.path` so that the code measured is the code next to the script.
"""

import os
import sys

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS_DIR)
DOCS_DIR = os.path.join(ROOT, "docs")
IMPORT_PATHS = [BENCHMARKS_DIR, ROOT, os.path.join(ROOT, "models")]

for _path in reversed(IMPORT_PATHS):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def subprocess_env():
    """os.environ for a child Python process that must import the same tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(IMPORT_PATHS + [env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the C++ startup chatter buries the results
    return env
