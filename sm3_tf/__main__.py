"""`python -m sm3_tf`: versions, kernel library and step paths of this installation."""

import sys

from sm3_tf import diagnostics

sys.exit(diagnostics.main())
