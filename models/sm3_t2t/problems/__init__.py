"""Problems: data generation, vocabularies and input pipelines, registered by T2T name.

Importing this package registers every problem; look them up with
`sm3_t2t.registry.problem(name)`.
"""

# Problem families; importing a module registers its problems.
from sm3_t2t.problems import (
    algorithmic,  # noqa: E402,F401
    translate,  # noqa: E402,F401
)
from sm3_t2t.problems.base import EVAL, MODES, TEST, TRAIN, Problem, check_mode
from sm3_t2t.problems.shards import (
    CorruptShardError,
    DataError,
    MissingDataError,
    VocabularyMismatchError,
)
from sm3_t2t.problems.text2text import Text2TextProblem
from sm3_t2t.special_ids import EOS_ID, PAD_ID

__all__ = [
    "CorruptShardError",
    "DataError",
    "EOS_ID",
    "EVAL",
    "MODES",
    "MissingDataError",
    "PAD_ID",
    "Problem",
    "TEST",
    "TRAIN",
    "Text2TextProblem",
    "VocabularyMismatchError",
    "check_mode",
]
