"""Architectures (plain data), their feasibility plan, and the Keras builder."""

from search.model._architecture import Architecture, ConvBlock, Head, Preprocessing, Training
from search.model._builder import build_model, compile_model
from search.model._fused import for_saving
from search.model._plan import Plan, Step, check_budget, make_plan

__all__ = [
    "Architecture",
    "ConvBlock",
    "Head",
    "Plan",
    "Preprocessing",
    "Step",
    "Training",
    "build_model",
    "check_budget",
    "compile_model",
    "for_saving",
    "make_plan",
]
