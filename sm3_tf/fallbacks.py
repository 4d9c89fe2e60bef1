"""Says once per optimizer how many variables take the TF-ops path instead of the fused kernel, and
why: the kernel library is unavailable, the variable lives on a GPU, its dtype is unsupported.

The optimizer records each variable's path while it builds its update (`step.select`) and calls
`flush` at the end of `apply` (Keras) or `_finish` (v1). Under XLA nothing is recorded: the TF-ops
step is XLA's implementation, not a fallback. Two optimizers with the same story (the same counts
and reasons, whatever their names) tell it once in a process.
"""

import collections
import warnings

_told = set()  # stories (counts and reasons) already told in this process


class FallbackReport:
    """Collects (variable, reason) of one optimizer's fallbacks; warns once, aggregated."""

    def __init__(self, optimizer_name):
        self._optimizer_name = optimizer_name
        self._reasons = {}  # id(variable) -> why it falls back, None when fused (names repeat)
        self._told = False

    def record(self, variable, reason):
        """Notes that `variable` takes the fused kernel (reason None) or not (reason a sentence)."""
        self._reasons[id(variable)] = reason

    def story(self):
        """(variables falling back, variables seen, why), or None when none falls back."""
        fallbacks = collections.Counter(r for r in self._reasons.values() if r is not None)
        if not fallbacks:
            return None
        whys = "; ".join(
            f"{n} because {reason}" if len(fallbacks) > 1 else reason
            for reason, n in fallbacks.most_common()
        )
        return sum(fallbacks.values()), len(self._reasons), whys

    def message(self):
        """The warning's text, or None when no variable fell back."""
        story = self.story()
        if story is None:
            return None
        count, seen, whys = story
        return (
            f"SM3 fused kernel not used for {count} of {seen} variables of optimizer "
            f"{self._optimizer_name!r}; they take the TF-ops path (same numerics; slower, "
            f"with parameter-sized temporaries): {whys}. `python -m sm3_tf` diagnoses the set-up."
        )

    def flush(self):
        """Warns (once for this optimizer, once per story in the process) if any fell back."""
        story = None if self._told else self.story()
        if story is None:
            return
        self._told = True
        if story not in _told:
            _told.add(story)
            warnings.warn(self.message(), RuntimeWarning, stacklevel=3)
