"""Says once per optimizer how many variables take the TF-ops path instead of the fused kernel, and
why: the kernel library is unavailable, the variable lives on a GPU, its dtype is unsupported.

The optimizer records each variable's path while it builds its update (`step.select`) and calls
`flush` at the end of `apply` (Keras) or `_finish` (v1). Under XLA nothing is recorded: the TF-ops
step is XLA's implementation, not a fallback. Two optimizers with the same story tell it once.
"""

import collections
import warnings

_told = set()  # messages already given in this process


class FallbackReport:
    """Collects (variable, reason) of one optimizer's fallbacks; warns once, aggregated."""

    def __init__(self, optimizer_name):
        self._optimizer_name = optimizer_name
        self._reasons = {}  # id(variable) -> why it falls back, None when fused (names repeat)
        self._told = False

    def record(self, variable, reason):
        """Notes that `variable` takes the fused kernel (reason None) or not (reason a sentence)."""
        self._reasons[id(variable)] = reason

    def message(self):
        """The warning's text, or None when no variable fell back."""
        fallbacks = collections.Counter(r for r in self._reasons.values() if r is not None)
        if not fallbacks:
            return None
        count = sum(fallbacks.values())
        whys = "; ".join(
            f"{n} because {reason}" if len(fallbacks) > 1 else reason
            for reason, n in fallbacks.most_common()
        )
        return (
            f"SM3 fused kernel not used for {count} of {len(self._reasons)} variables of optimizer "
            f"{self._optimizer_name!r}; they take the TF-ops path (same numerics; slower, "
            f"with parameter-sized temporaries): {whys}. `python -m sm3_tf` diagnoses the set-up."
        )

    def flush(self):
        """Warns (once for this optimizer, once per message in the process) if any fell back."""
        message = None if self._told else self.message()
        if message is None:
            return
        self._told = True
        if message not in _told:
            _told.add(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
