"""Quick start: train a small Keras model with SM3 and compare its optimizer memory with Adam's.

python examples/keras_quickstart.py
"""

import keras
import numpy as np

import sm3_tf
from sm3_tf import memory


def main():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1000, size=(4096, 16))
    # A learnable target: the mean of per-token weights.
    y = np.take(rng.normal(size=1000), x).mean(axis=1, keepdims=True).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((16,), dtype="int32"),
            keras.layers.Embedding(1000, 64),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    schedule = sm3_tf.schedules.WarmupSchedule(0.1, warmup_steps=50)
    model.compile(optimizer=sm3_tf.SM3(learning_rate=schedule, momentum=0.9), loss="mse")
    history = model.fit(x, y, batch_size=64, epochs=5, verbose=2)
    print(f"loss: {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f}")
    print(memory.comparison_table(model.trainable_variables, model.optimizer))


if __name__ == "__main__":
    main()
