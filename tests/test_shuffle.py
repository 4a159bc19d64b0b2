"""jaxppo.shuffle.permutations: every row a permutation, positions uniform, same law past the packed size."""

import jax
import numpy as np
import pytest

from jaxppo import shuffle


@pytest.mark.parametrize("n", [1, 2, 5, 512, 600, shuffle.PACKED_MAX_SIZE + 3])
def test_rows_are_permutations(n):
    out = np.asarray(jax.jit(shuffle.permutations, static_argnums=(1, 2))(jax.random.PRNGKey(n), 3, n))
    assert out.shape == (3, n) and out.dtype == np.int32
    for row in out:
        np.testing.assert_array_equal(np.sort(row), np.arange(n))
    if n >= 5:
        assert not np.array_equal(out[0], out[1])  # independent rows


def test_every_element_lands_in_every_position_equally_often():
    # 20,000 permutations of 6: each of the 36 (element, position) cells expects 3,333 hits.
    # Chi-square with 25 degrees of freedom: above 60 has probability < 1e-4 under uniformity,
    # while a sort that kept tied keys in index order at 3 random bits would land far above it.
    n, num = 6, 20000
    out = np.asarray(jax.jit(shuffle.permutations, static_argnums=(1, 2))(jax.random.PRNGKey(0), num, n))
    counts = np.zeros((n, n))
    for row in out:
        counts[row, np.arange(n)] += 1
    expected = num / n
    chi_square = float(np.sum((counts - expected) ** 2 / expected))
    assert chi_square < 60.0, chi_square
    # And all 720 orderings appear (each expects 27.8 draws; one missing has probability ~6e-10):
    # the law is over permutations, not just positions.
    assert len({tuple(row) for row in out}) == 720
