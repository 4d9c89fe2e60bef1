"""Peak resident memory (RSS) of training steps of a Transformer with one optimizer, in its own
process.

Peak RSS is a per-process high-water mark, so every (optimizer, batch) measurement needs a fresh
process: the memory and batch-headroom benchmarks run this module as a subprocess through
`run_probe` and read back the one JSON line it prints.

    python -m benchmarks.rss_probe --optimizer=adam --hparams_set=transformer_big \\
        --vocab=32768 --batch_tokens=2048 --length=64

What the process does: build the Transformer of `--hparams_set` for a `--vocab`-word shared
vocabulary (its variables, as the trainer builds them), build the optimizer on them, then run
`--steps` compiled training steps (forward, backward, apply) on random token ids,
`batch_tokens // length` sentences of `length` tokens on both sides. `--optimizer=none` runs the
forward and backward pass without an optimizer: the model-only baseline.
"""

import argparse
import json
import resource
import sys
import time

from benchmarks import processes

RESULT_PREFIX = "RSS_PROBE_RESULT "
# Results by probe arguments: the memory and headroom parts of one `run_all.py` share probes.
_RESULTS = {}


def _rss_bytes():
    import psutil

    return psutil.Process().memory_info().rss


def _peak_rss_bytes():
    """This process's peak resident memory: VmHWM, the high-water mark of its address space.

    Not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec from the image before it, so a
    probe started by a parent holding 5 GiB would report at least 5 GiB whatever it used.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    # Not Linux: ru_maxrss (KiB on Linux and most BSDs, bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _sm3_path(optimizer, variable):
    """Which SM3 step implementation ran ('fused' or 'tf_ops'); None for other optimizers."""
    import sm3_tf

    if not isinstance(optimizer, sm3_tf.SM3):
        return None
    return optimizer.step_path(variable).kind


def _make_step(model, optimizer, label_smoothing):
    import tensorflow as tf

    from sm3_t2t import metrics

    variables = model.trainable_variables

    @tf.function
    def train_step(features):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss_sum, weight = metrics.padded_cross_entropy(
                logits, features["targets"], label_smoothing
            )
            loss = loss_sum / tf.maximum(weight, 1.0)
        grads = tape.gradient(loss, variables)
        if optimizer is None:
            # Consume every gradient (else the graph prunes the backward pass), one at a time as an
            # optimizer would, so the baseline holds the same gradients an optimizer step holds.
            return loss + tf.add_n([tf.reduce_sum(g) for g in grads]) * 0.0
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    return train_step


def measure(optimizer_name, hparams_set, vocab, batch_tokens, length, steps, seed=1):
    """Runs the probe in this process; returns the result dict (see the module docstring)."""
    rss_start = _rss_bytes()
    import keras
    import tensorflow as tf

    from benchmarks import roster
    from sm3_t2t import model_builder, registry
    from sm3_tf import memory

    keras.utils.set_random_seed(seed)
    rss_imported = _rss_bytes()
    hparams = registry.hparams_set(hparams_set)
    model = registry.model("transformer")(hparams, input_vocab_size=vocab, target_vocab_size=vocab)
    model_builder.build_variables(model)
    variables = model.trainable_variables
    rss_model = _rss_bytes()
    optimizer = None
    if optimizer_name != roster.MODEL_ONLY:
        optimizer = roster.make(optimizer_name)
        optimizer.build(variables)
    rss_optimizer = _rss_bytes()

    sentences = max(1, batch_tokens // length)

    from sm3_t2t.special_ids import EOS_ID, PAD_ID

    # No PAD (it would carry no loss) and no EOS: ids above both.
    def ids():
        return tf.random.uniform(
            [sentences, length], max(PAD_ID, EOS_ID) + 1, vocab, dtype=tf.int64
        )

    features = {"inputs": ids(), "targets": ids()}
    train_step = _make_step(model, optimizer, hparams.label_smoothing)
    step_seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        float(train_step(features))
        step_seconds.append(time.perf_counter() - start)
    return {
        "optimizer": optimizer_name,
        "hparams_set": hparams_set,
        "vocab": vocab,
        "batch_tokens": sentences * length,
        "sentences": sentences,
        "length": length,
        "steps": steps,
        "params": int(sum(int(tf.size(v)) for v in variables)),
        "param_bytes": memory.parameter_bytes(variables),
        "state_bytes": memory.state_bytes(optimizer) if optimizer else 0,
        "rss_start": rss_start,
        "rss_imported": rss_imported,
        "rss_model": rss_model,
        "rss_optimizer": rss_optimizer,
        "rss_end": _rss_bytes(),
        "peak_rss": _peak_rss_bytes(),
        # The first step includes tracing; the last is the steady-state step time.
        "first_step_seconds": step_seconds[0],
        "last_step_seconds": step_seconds[-1],
        "sm3_path": _sm3_path(optimizer, variables[0]) if optimizer else None,
    }


def run_probe(
    optimizer,
    hparams_set="transformer_big",
    vocab=32768,
    batch_tokens=2048,
    length=64,
    steps=1,
    timeout=3600,
):
    """Runs `measure` in a fresh subprocess; returns its result dict, or None if the probe died.

    A probe that runs out of memory is killed by the kernel; that is reported as None (with its
    stderr tail printed) rather than as an exception, because "does not fit" is a result.
    """
    key = (optimizer, hparams_set, vocab, batch_tokens, length, steps)
    if key in _RESULTS:
        return _RESULTS[key]
    done = processes.run_module(
        "rss_probe",
        f"--optimizer={optimizer}",
        f"--hparams_set={hparams_set}",
        f"--vocab={vocab}",
        f"--batch_tokens={batch_tokens}",
        f"--length={length}",
        f"--steps={steps}",
        timeout=timeout,
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            _RESULTS[key] = json.loads(line[len(RESULT_PREFIX) :])
            return _RESULTS[key]
    tail = "\n".join(done.stderr.strip().splitlines()[-5:])
    print(
        f"  probe {optimizer} at {batch_tokens} tokens failed (exit {done.returncode}): {tail}",
        file=sys.stderr,
    )
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--optimizer",
        required=True,
        help="a name of benchmarks/roster.py, or 'none' (model only)",
    )
    parser.add_argument("--hparams_set", default="transformer_big")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--batch_tokens", type=int, default=2048)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    result = measure(
        args.optimizer, args.hparams_set, args.vocab, args.batch_tokens, args.length, args.steps
    )
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
