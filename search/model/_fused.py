"""Training-time twins of Keras's BatchNormalization, Adam and AdamW that run TensorFlow's fused kernels.

A trial on a CPU spends much of its time outside the convolutions: Keras 3 writes batch norm and the
Adam update as chains of small ops (moments, then the affine transform; about fifteen ops a weight for
Adam), and TensorFlow traces every one of them once per trial and dispatches every one at every step.
TensorFlow ships one kernel for each (``FusedBatchNormV3``, ``ResourceApplyAdam``). Measured on the
2-core machine this project is built on (``benchmarks/fused.py``: the vgg and resnet start points, 2,400
images of 32x32, one thread): the first epoch (trace included) 37-50% shorter, the later epochs 23-35%,
all fits 0.62x Keras's own, the same training loss to 3 decimals. Profiled on a whole 10-trial search
(py-spy), tracing had been 30% of the workers' time and the optimizer update 38% of the tracing.

With ``use_ema`` (:func:`search.model._builder.ema_momentum`) the optimizer twin also updates the
weights' moving average with one ``ResourceApplyGradientDescent`` a weight (``average -= (1 - momentum)
* (average - weight)``, the same arithmetic as Keras's update).

Same arithmetic: the batch-norm twin computes what Keras's layer computes, except that the moving
variance it keeps is the batch variance with Bessel's correction (n/(n-1), as Keras 2's fused path
kept it) where Keras 3 keeps the biased one; the Adam twin is the same update (``lr * sqrt(1 - b2^t) /
(1 - b1^t)``, epsilon added to the root), AdamW's decoupled weight decay is Keras's own. Every case the
kernels do not cover (masks, renorm, another axis, float16 batch norm, amsgrad, sparse gradients, other
backends) runs Keras's own code.

The twins live only while a trial trains: :func:`for_saving` rebuilds the trained model from its own
config with plain built-in layers and the same weights, compiled with Keras's own optimizer, before
anything saves, registers or exports it, so a ``.keras`` file never needs cnn-search to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

_CLASSES: dict[str, type] = {}


def fused_batch_norm_class() -> type:
    """BatchNormalization whose training step is ``FusedBatchNormV3`` (inference is Keras's own)."""
    if "BatchNormalization" not in _CLASSES:
        import keras
        import tensorflow as tf

        class FusedBatchNormalization(keras.layers.BatchNormalization):
            def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
                fusable = (
                    training
                    and self.trainable
                    and mask is None
                    and len(inputs.shape) == 4
                    and self.axis in (-1, 3)
                    and self.center
                    and self.scale
                    and not self.renorm
                    and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                )
                if not fusable:
                    return super().call(inputs, training=training, mask=mask)
                outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                    inputs,
                    self.gamma.value,
                    self.beta.value,
                    mean=self.moving_mean.value,
                    variance=self.moving_variance.value,
                    epsilon=self.epsilon,
                    is_training=True,
                    exponential_avg_factor=1.0 - self.momentum,  # returns the updated moving statistics
                )
                self.moving_mean.assign(mean)
                self.moving_variance.assign(variance)
                return outputs

        _CLASSES["BatchNormalization"] = FusedBatchNormalization
    return _CLASSES["BatchNormalization"]


def fused_optimizer_class(base: type) -> type:
    """``base`` (``keras.optimizers.Adam`` or ``AdamW``) updating each weight with one
    ``ResourceApplyAdam``; any other optimizer class is returned as it is."""
    import keras

    if base not in (keras.optimizers.Adam, keras.optimizers.AdamW):
        return base
    if base.__name__ not in _CLASSES:
        import tensorflow as tf

        class Fused(base):
            def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
                if self.amsgrad or isinstance(gradient, tf.IndexedSlices) or variable.dtype != tf.float32:
                    return super().update_step(gradient, variable, learning_rate)
                index = self._get_variable_index(variable)
                step = tf.cast(self.iterations + 1, tf.float32)
                beta_1, beta_2 = tf.cast(self.beta_1, tf.float32), tf.cast(self.beta_2, tf.float32)
                tf.raw_ops.ResourceApplyAdam(
                    var=variable.handle,
                    m=self._momentums[index].value.handle,
                    v=self._velocities[index].value.handle,
                    beta1_power=tf.pow(beta_1, step),
                    beta2_power=tf.pow(beta_2, step),
                    lr=tf.cast(learning_rate, tf.float32),
                    beta1=beta_1,
                    beta2=beta_2,
                    epsilon=tf.cast(self.epsilon, tf.float32),
                    grad=tf.cast(gradient, tf.float32),
                    use_locking=False,
                )
                return None

            def _update_model_variables_moving_average(self, trainable_variables: Any) -> None:
                # use_ema: average -= (1 - momentum) * (average - weight), one fused kernel a weight where
                # Keras's own update traces some ten ops a weight into every trial's train step
                if not self.use_ema or any(v.dtype != tf.float32 for v in trainable_variables):
                    return super()._update_model_variables_moving_average(trainable_variables)
                first = tf.equal(self.iterations, 0)  # the first step copies the weights, as Keras's does
                rate = tf.where(first, 1.0, 1.0 - tf.cast(self.ema_momentum, tf.float32))
                for variable, average in zip(trainable_variables, self._model_variables_moving_average, strict=True):
                    tf.raw_ops.ResourceApplyGradientDescent(
                        var=average.value.handle, alpha=rate, delta=average.value - variable.value, use_locking=False
                    )
                return None

        Fused.__name__ = Fused.__qualname__ = f"Fused{base.__name__}"
        _CLASSES[base.__name__] = Fused
    return _CLASSES[base.__name__]


def for_saving(model: keras.Model) -> keras.Model:
    """``model`` as it is saved, registered and exported: a model trained with the fused twins is
    rebuilt from its own config with plain BatchNormalization and the same weights (the twins create
    the same variables in the same order), and compiled as it was with the plain optimizer (its
    configuration, not its training state: a fresh optimizer, as after loading a model saved without
    one); any other model is returned as it is."""
    import keras

    twins = tuple(_CLASSES.values())
    if not twins or not (
        any(isinstance(layer, twins) for layer in model.layers) or isinstance(getattr(model, "optimizer", None), twins)
    ):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "FusedBatchNormalization":
            layer.update(class_name="BatchNormalization", module="keras.layers", registered_name=None)
    plain = keras.Model.from_config(config)
    plain.set_weights(model.get_weights())
    compiled = model.get_compile_config() if model.compiled else None
    if compiled is not None:
        optimizer = compiled["optimizer"]
        if optimizer["class_name"].startswith("Fused"):
            base = optimizer["class_name"].removeprefix("Fused")
            optimizer.update(class_name=base, module="keras.optimizers", registered_name=None)
            optimizer["config"]["name"] = base.lower()
        plain.compile_from_config(compiled)
    return plain
