"""The execution engine: one layer algebra (:mod:`.layers`, dense and sparse backends), the step
written once over it (:mod:`.step`), the output heads (:mod:`.heads`) and the engine's memory
model (:mod:`.memory`)."""
from .layers import DenseLayers, Layers, SparseLayers, UpdatedLayers, as_layers, relu, relu_grad, to_sparse
from .step import Pass, Step, abs_forward, backward, forward, layers_of, maml_step, single_step

__all__ = ["DenseLayers", "Layers", "Pass", "SparseLayers", "Step", "UpdatedLayers", "abs_forward", "as_layers",
           "backward", "forward", "layers_of", "maml_step", "relu", "relu_grad", "single_step", "to_sparse"]
