"""A layer kind (a value of ``conv_type``) is one class in one file, registered by name
(search/model/layers/): its rule, its check, its plan and its Keras layer. These tests add one from
outside the package, a dilated convolution, and find it in the space's rules, the JSON Schema, the plan
(whose parameter count and shapes Keras's model matches), the summary, and a real search whose
trials, supervisor and worker processes alike, build and train it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

from search import InfeasibleError
from search.model import Architecture, ConvBlock, build_model, make_plan
from search.model.layers import LAYER_KINDS, get_layer_kind
from search.space import Space, json_schema

from .helpers import ENV

PLUGIN = '''
"""A layer kind from outside cnn-search: a 3x3 kernel dilated to see 5x5 (Keras's dilation_rate)."""
from search.model.layers import LayerKind, register_layer_kind


@register_layer_kind
class Dilated(LayerKind):
    name = "dilated"
    short = "dil"
    doc = "a Conv2D with dilation_rate 2"

    def check(self, block):
        return "needs strides 1 (Keras refuses a dilated convolution with strides)" if block.strides != 1 else None

    def plan(self, b, x, name, block, index, *, strides, what):
        k, cin, filters = block.kernel_size, b.channels(x), block.filters
        macs = k * k * cin * filters
        config = {"filters": filters, "dilation_rate": 2, **b.conv_config(block, k, strides, block.padding)}
        return b.spatial(
            x, name, "Conv2D", config, kernel=2 * k - 1, strides=strides, padding=block.padding, channels=filters,
            params=macs + (0 if block.batch_norm else filters), flops_per_pixel=2 * macs, block=index, what=what,
        )
'''

SPACE = """
name: dilated
blocks:
  depth: {low: 1, high: 2}
  filters: [8, 16]
  conv_type: [dilated, standard]
  padding: [valid, same]
  pooling: max
head:
  pooling: global_average
  dense_layers: 0
training:
  batch_size: 64
  epochs: 1
start:
  - blocks/depth: 2
    block_0/conv_type: dilated
    block_0/padding: valid
    block_1/conv_type: dilated
    block_1/padding: same
"""


@pytest.fixture
def dilated(tmp_path, monkeypatch):
    """The plugin imported in this process, and taken out of the registry afterwards."""
    (tmp_path / "dilated_kind.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("dilated_kind")
    yield get_layer_kind("dilated")
    LAYER_KINDS.pop("dilated", None)
    sys.modules.pop("dilated_kind", None)


def test_the_built_in_kinds_are_registered_in_the_order_of_the_choices():
    assert list(LAYER_KINDS) == ["standard", "separable", "depthwise"]
    assert [type(k).__module__ for k in LAYER_KINDS.values()] == [
        "search.model.layers._standard",
        "search.model.layers._separable",
        "search.model.layers._depthwise",
    ]


def test_a_kind_added_from_outside_is_a_choice_of_the_space_and_the_schema(dilated, tmp_path):
    path = tmp_path / "dilated.yaml"
    path.write_text(SPACE)
    space = Space.from_file(path)
    assert space.name == "dilated"
    conv_type = json_schema()["properties"]["blocks"]["properties"]["conv_type"]
    assert "dilated" in conv_type["anyOf"][0]["enum"]
    assert "dilated: a Conv2D with dilation_rate 2" in conv_type["description"]
    # and it is gone with it: the same space is refused, naming the choices there are
    LAYER_KINDS.pop("dilated")
    with pytest.raises(Exception, match=r"one of standard, separable, depthwise"):
        Space.from_file(path)


def test_the_kinds_plan_is_what_keras_builds(dilated):
    arch = Architecture(
        blocks=(ConvBlock(filters=8, conv_type="dilated", padding="valid"), ConvBlock(filters=4, conv_type="dilated"))
    )
    plan = make_plan(arch, (16, 16, 3), 5)
    assert plan.shape_of("block0_conv1") == (12, 12, 8)  # 16 - 5 + 1: the dilated 3x3 spans 5
    model = build_model(arch, (16, 16, 3), 5, plan=plan)
    assert model.count_params() == plan.params
    assert model.get_layer("block0_conv1").dilation_rate == (2, 2)
    assert tuple(model.get_layer("block0_pool").output.shape[1:]) == plan.shape_of("block0_pool")
    assert arch.summary(num_classes=5).startswith("dil3x3·8·relu/max")


def test_the_kinds_check_makes_a_block_it_cannot_take_infeasible(dilated):
    arch = Architecture(blocks=(ConvBlock(filters=8, conv_type="dilated", strides=2),))
    with pytest.raises(InfeasibleError, match="block 0: dilated needs strides 1") as refused:
        make_plan(arch, (16, 16, 3), 5)
    assert refused.value.reason == "layer_kind"


@pytest.mark.slow
def test_a_search_trains_the_kind_added_from_outside_in_its_workers(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "dilated_kind.py").write_text(textwrap.dedent(PLUGIN))
    (plugin / "sitecustomize.py").write_text("import dilated_kind  # every process: run, its workers\n")
    (tmp_path / "dilated.yaml").write_text(SPACE)
    env = {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin), ENV.get("PYTHONPATH", "")]))}
    code = (
        "from search import run_search\n"
        "r = run_search('dilated.yaml', trials=3, epochs=1, workers=2, seed=0, report=False)\n"
        "print(r.states)\n"
        "print(sorted({b.conv_type for b in r.architecture.blocks}) if r.architecture else None)\n"
        "import mlflow\n"
        "runs = mlflow.MlflowClient(r.tracking_uri).search_runs([r.experiment_id], 'tags.state = \"complete\"')\n"
        "print(sum('dilated' in str(run.data.params) for run in runs))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    states, _, trained = ran.stdout.strip().splitlines()[-3:]
    assert "'complete'" in states
    assert int(trained) >= 1  # the start point, all dilated, trained in a worker and recorded
