"""Keras Adafactor with its features switched off one at a time, for docs/recipes.md's ablation.

Keras's Adafactor (keras/src/optimizers/adafactor.py, after Shazeer & Stern 2018) differs from
SM3 in four ways that can matter early in training:

  scale   the step is relative to the parameter's scale: lr * max(epsilon_2, RMS(w));
  clip    the update u = g / sqrt(v) is divided by max(1, RMS(u) / clip_threshold);
  decay   v is a moving average with beta_2(t) = 1 - t**-0.8, so old gradients are forgotten
          (SM3 with beta_2 = 1, like Adagrad, sums every squared gradient since step 1);
  factor  v of a matrix is the outer product of row and column means (SM3: min of the covers).

`AblatedAdafactor` is Keras's update with switches: `parameter_scale=False` drops the RMS(w)
factor, `clip_threshold=inf` the update clipping (a Keras argument), and
`accumulate="sum"` replaces the moving average by a running sum (v_t = v_{t-1} + g^2, the
Adagrad/SM3 accumulation). `ABLATIONS` names the variants `benchmarks.convergence_run --adafactor=`
accepts; `patch_factory` makes the trainer build one instead of the plain Keras Adafactor.
"""

import keras
import tensorflow as tf

ABLATIONS = {
    "full": {},
    "no_clip": {"clip_threshold": float("inf")},
    "no_scale": {"parameter_scale": False},
    "sum": {"accumulate": "sum"},
    "no_scale_sum": {"parameter_scale": False, "accumulate": "sum"},
}


class AblatedAdafactor(keras.optimizers.Adafactor):
    """Keras Adafactor (TensorFlow backend) with the parameter scaling and decay switchable."""

    def __init__(self, parameter_scale=True, accumulate="decay", **kwargs):
        if accumulate not in ("decay", "sum"):
            raise ValueError(f"`accumulate` must be 'decay' or 'sum', got {accumulate!r}")
        super().__init__(**kwargs)
        self.parameter_scale = parameter_scale
        self.accumulate = accumulate

    def update_step(self, gradient, variable, learning_rate):
        lr = tf.cast(learning_rate, variable.dtype)
        gradient = tf.cast(gradient, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        index = self._get_variable_index(variable)
        rows, cols, second_moment = self._r[index], self._c[index], self._v[index]

        def rms(x):
            return tf.sqrt(tf.reduce_mean(tf.square(x)))

        rate = tf.minimum(lr, tf.math.rsqrt(step))  # Keras caps the rate at 1/sqrt(t)
        if self.parameter_scale:
            rate *= tf.maximum(tf.cast(self.epsilon_2, variable.dtype), rms(variable))
        squared = tf.square(gradient) + self.epsilon_1
        if self.accumulate == "sum":
            old, new = 1.0, 1.0
        else:
            old = 1.0 - tf.pow(step, self.beta_2_decay)
            new = 1.0 - old
        if len(variable.shape) >= 2:
            rows.assign(old * rows + new * tf.reduce_mean(squared, axis=-1))
            cols.assign(old * cols + new * tf.reduce_mean(squared, axis=-2))
            row_share = rows / tf.reduce_mean(rows, axis=-1, keepdims=True)
            second_moment.assign(row_share[..., None] * cols[..., None, :])
        else:
            second_moment.assign(old * second_moment + new * squared)
        update = gradient / tf.sqrt(second_moment)
        update /= tf.maximum(1.0, rms(update) / self.clip_threshold)
        variable.assign_sub(rate * update)


def make(name, learning_rate, global_clipnorm=None):
    """The ablation `name` of ABLATIONS with `learning_rate` (a schedule or a float)."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown Adafactor ablation {name!r}; known: {', '.join(ABLATIONS)}")
    return AblatedAdafactor(
        learning_rate=learning_rate, global_clipnorm=global_clipnorm, **ABLATIONS[name]
    )


def patch_factory(name):
    """Makes `sm3_t2t.optimizers.make_optimizer` build ablation `name` for optimizer=adafactor.

    The trainer calls it through the module (`optimizers.make_optimizer`), so replacing the
    module attribute reaches it.
    """
    from sm3_t2t import optimizers

    original = optimizers.make_optimizer

    def make_optimizer(hparams, total_steps=None, api="keras"):
        if str(hparams.optimizer).lower() != "adafactor":
            return original(hparams, total_steps=total_steps, api=api)
        learning_rate = optimizers.make_learning_rate(hparams, total_steps)
        return make(name, learning_rate, optimizers.clip_norm(hparams))

    optimizers.make_optimizer = make_optimizer
