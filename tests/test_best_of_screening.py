"""studies/best_of_screening.py's replay of screening policies on recorded chains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "best_of_screening.py"


def test_plain_best_of_counts_groups_with_any_success_and_screening_keeps_the_top_early_scores():
    study = load_script(SCRIPT, "best_of_screening")
    # one pair, 8 candidates; only candidate 5 reads both ways
    final = np.array([[False, False, False, False, False, True, False, False]])
    assert study.plain_best_of(final, 1) == 1 / 8
    assert study.plain_best_of(final, 4) == 0.5  # groups 0-3 (no) and 4-7 (yes)
    assert study.plain_best_of(final, 8) == 1.0
    promising = np.array([[0.9, 0.1, 0.2, 0.3, 0.4, 0.8, 0.5, 0.6]])  # candidate 5 second best early
    assert study.screened(final, promising, 8, 2) == 1.0
    assert study.screened(final, promising, 8, 1) == 0.0  # keeps candidate 0 alone
    misleading = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.0, 0.4, 0.3]])
    assert study.screened(final, misleading, 8, 4) == 0.0
    assert study.chain_cost(32, 8, 5) == (32 * 5 + 8 * 15) / 20
    assert study.chain_cost(8, 8, 3) == 8.0  # no screening: K whole chains
