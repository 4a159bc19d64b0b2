"""Checkpoint round-trips of state trees with odd leaves (zero-size arrays, as MJX physics states hold)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxppo.checkpoint import restore_checkpoint, save_checkpoint


def test_a_tree_with_zero_size_arrays_round_trips_exactly(tmp_path):
    tree = {"weights": jnp.arange(6, dtype=jnp.float32).reshape(2, 3),
            "physics": {"act": jnp.zeros((4, 0), jnp.float32), "qpos": jnp.array([0.5, -1.25]),
                        "contacts": jnp.zeros((0,), jnp.int32)},
            "key": jax.random.key_data(jax.random.PRNGKey(3))}
    save_checkpoint(str(tmp_path / "ckpt"), 7, tree, {"note": "zero-size"})
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
    restored, meta, update = restore_checkpoint(str(tmp_path / "ckpt"), abstract)
    assert update == 7 and meta["note"] == "zero-size"
    assert jax.tree.structure(restored) == jax.tree.structure(tree)
    for want, got in zip(jax.tree.leaves(tree), jax.tree.leaves(restored)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
