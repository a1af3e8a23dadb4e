"""Finding every entry with a name, and mapping over the state buffers that mirror the params."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest

import optgrad as og

PARAMS = {"w": jnp.zeros((4, 2)), "b": jnp.zeros(2)}
SPECS = {"w": "rows", "b": "replicated"}


def test_get_all_with_path_lists_every_match_with_a_path_get_accepts():
    tx = og.chain(og.adam(1e-3), og.named_chain(("inner", og.scale_by_adam())))
    state = tx.init(PARAMS)
    found = og.tree.get_all_with_path(state, "count")
    assert [p for p, _ in found] == ["0/count", "0/inner_state/0/count", "1/inner/count"]
    assert [v for _, v in found] == [
        state[0].count,
        state[0].inner_state[0].count,
        state[1]["inner"].count,
    ]
    assert og.tree.get_all_with_path(state, "inner/count")[0][0] == "1/inner/count"
    assert og.tree.get_all_with_path(state, "no_such_entry") == []
    with pytest.raises(TypeError, match="a name must be a non-empty string"):
        og.tree.get_all_with_path(state, "")


def _mirrors(state):
    """The state with every leaf replaced by a string: what map_params should produce."""
    return og.tree.map_params(
        TX_CASES[state][0], lambda _, spec: spec, TX_CASES[state][1], SPECS,
        transform_non_params=lambda _: "scalar",
    )  # fmt: skip


TX_CASES = {
    name: (tx, tx.init(PARAMS))
    for name, tx in {
        "adamw": og.adamw(1e-3),
        "sgd_momentum": og.sgd(0.1, momentum=0.9),
        "chain": og.chain(og.clip_by_global_norm(1.0), og.adam(1e-3)),
        "monitor_per_leaf": og.monitor(og.adam(1e-3), og.clip_by_block_rms(1.0), per_leaf=True),
        "torch": og.torch.Adam(lr=1e-3),
        "optax": optax.adam(1e-3),
    }.items()
}


@pytest.mark.parametrize("name", TX_CASES)
def test_map_params_reaches_exactly_the_buffers_that_mirror_the_params(name):
    _, state = TX_CASES[name]
    out = _mirrors(name)
    assert jax.tree.structure(out) == jax.tree.structure(state)
    # every param-shaped buffer got its param's spec; every other leaf was marked "scalar"
    for leaf, spec in zip(jax.tree.leaves(state), jax.tree.leaves(out)):
        if spec == "scalar":
            assert jnp.ndim(leaf) == 0
        else:
            assert leaf.shape == PARAMS["w" if spec == "rows" else "b"].shape
    assert "rows" in jax.tree.leaves(out)


def test_map_params_on_shape_structs_and_without_transform_non_params():
    tx = og.adam(1e-3)
    shapes = jax.eval_shape(tx.init, PARAMS)
    out = og.tree.map_params(tx, lambda s: s.shape, shapes)
    assert out.inner_state[0].mu == {"w": (4, 2), "b": (2,)}
    assert out.count is shapes.count  # left alone


def test_map_params_errors():
    with pytest.raises(TypeError, match="must be an optimizer"):
        og.tree.map_params(3, lambda x: x, {})
    with pytest.raises(ValueError, match="does not have the structure"):
        og.tree.map_params(og.adam(1e-3), lambda x: x, og.sgd(0.1).init(PARAMS))

    def peeks(params):
        return jnp.zeros(jax.tree.leaves(params)[0].shape)

    with pytest.raises(TypeError, match="reads the params' values or shapes"):
        og.tree.map_params(peeks, lambda x: x, jnp.zeros(2))
