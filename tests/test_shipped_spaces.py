"""Tests generated from the spaces/ folder (timm's test_models habit): each shipped space loads,
samples 20 times with a seeded source, and every sample either builds with exactly the predicted
parameter count at 8x8x1 and 32x32x3, or is refused with its reason before any layer is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from search import FixedParams, InfeasibleError, RandomParams, build_model, list_spaces, load_space
from search.space import spaces_dir

SPACES = Path(__file__).resolve().parents[1] / "spaces"

NAMES = sorted(p.stem for p in SPACES.glob("*.yaml"))
SHAPES = [(8, 8, 1), (32, 32, 3)]


def test_the_classic_families_are_shipped():
    assert NAMES == ["alexnet", "lenet", "mobilenet", "resnet", "tiny", "vgg"]
    assert list_spaces() == NAMES and spaces_dir() == SPACES


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_samples_build_with_predicted_params_or_are_refused(name):
    keras = pytest.importorskip("keras")
    space = load_space(name)
    source = RandomParams(seed=0)
    built = {shape: 0 for shape in SHAPES}
    for _ in range(20):
        arch = space.sample(source)
        assert space.sample(FixedParams(source.params)) == arch  # replayable from its parameters
        for shape in SHAPES:
            try:
                plan = space.check(arch, shape, 10)
            except InfeasibleError as exc:
                assert exc.reason in ("collapse", "max_params", "max_flops", "residual_shape")
                if exc.reason.startswith("max_"):  # the message names the budget and the value over it
                    assert str(exc).startswith("over budget: ") and exc.reason in str(exc), str(exc)
                else:  # and the block at fault
                    assert str(exc).startswith(f"block {exc.block}: "), str(exc)
                continue
            model = build_model(arch, shape, 10, plan=plan)
            assert model.count_params() == plan.params, arch.summary()
            assert tuple(model.output.shape) == (None, 10)
            built[shape] += 1
            keras.backend.clear_session()
    # every shipped space is usable on the offline default data (8x8 digits) and on 32x32 colour
    assert built[(8, 8, 1)] >= 3 and built[(32, 32, 3)] >= 3, built
