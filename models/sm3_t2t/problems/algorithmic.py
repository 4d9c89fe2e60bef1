"""Algorithmic problems: tiny synthetic sequence tasks for fast smoke tests, as in T2T."""

import random

from sm3_t2t.problems.base import TRAIN, Problem
from sm3_t2t.registry import register_problem
from sm3_t2t.vocabulary import SymbolEncoder


class AlgorithmicProblem(Problem):
    """Random symbol sequences of length 1..max_length mapped by `transform`.

    Data depends only on the problem and split (seeded by name), never on tmp_dir.
    """

    num_symbols = 2
    train_length = 40
    eval_length = 40  # T2T evaluates on length 400; equal lengths keep smoke tests fast
    train_size = 5000
    eval_size = 500

    def transform(self, symbols):
        """The target sequence for input `symbols` (a list of ints)."""
        raise NotImplementedError

    def feature_encoders(self, data_dir):
        """A built-in symbol vocabulary, one object for inputs and targets."""
        del data_dir
        encoder = SymbolEncoder(self.num_symbols)
        return {"inputs": encoder, "targets": encoder}

    def source_text_pairs(self, split, tmp_dir):
        """`size` random (sequence, transform(sequence)) pairs as symbol text."""
        del tmp_dir
        rng = random.Random(f"{self.name}-{split}")  # str seeds are stable across runs
        length = self.train_length if split == TRAIN else self.eval_length
        size = self.train_size if split == TRAIN else self.eval_size
        for _ in range(size):
            symbols = [rng.randrange(self.num_symbols) for _ in range(rng.randint(1, length))]
            yield (" ".join(map(str, symbols)), " ".join(map(str, self.transform(symbols))))


@register_problem
class AlgorithmicReverseBinary40(AlgorithmicProblem):
    """Reverse a binary sequence of length up to 40 (targets are the inputs backwards)."""

    def transform(self, symbols):
        """The symbols in reverse order."""
        return symbols[::-1]
