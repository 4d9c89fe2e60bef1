"""Decoding settings on a trained run: BLEU by beam, length penalty and length bound.

    python -m benchmarks.decode_study --output_dir=output/demo_enfr_wesnoth \\
        [--beams=1,4] [--alphas=0.6,1.0] [--extra_lengths=50,10] [--samples=200]

Restores the run's latest checkpoint (`sm3_t2t.decoder.load_trained`), translates the first
`--samples` test sentences with every combination and prints BLEU (sacrebleu), the share of
translations that ran into their length bound (source length + extra, T2T's decode_length) and
the share with a word repeated three times in a row (the degenerate "d'un d'un d'un" output).
"""

import argparse
import itertools
import re

from sm3_t2t import decoder, metrics, problems

_TRIPLE = re.compile(r"\b(\S+)( \1){2,}")


def study(output_dir, beams, alphas, extra_lengths, samples):
    trained = decoder.load_trained(output_dir)
    pairs = trained.problem.text_pairs(problems.TEST, trained.run_info["data_dir"])[:samples]
    sources = [source for source, _ in pairs]
    references = [reference for _, reference in pairs]
    source_lengths = [len(trained.encoders["inputs"].encode(s)) + 1 for s in sources]
    rows = []
    for beam, alpha, extra in itertools.product(beams, alphas, extra_lengths):
        hypotheses = decoder.translate_texts(
            trained.model,
            trained.encoders,
            sources,
            beam_size=beam,
            alpha=alpha,
            extra_length=extra,
        )
        lengths = [len(trained.encoders["targets"].encode(h)) for h in hypotheses]
        at_bound = sum(n + 1 >= s + extra for n, s in zip(lengths, source_lengths))
        repeated = sum(bool(_TRIPLE.search(h)) for h in hypotheses)
        rows.append((beam, alpha, extra, metrics.bleu(hypotheses, references), at_bound, repeated))
        print(
            f"beam {beam} alpha {alpha:g} extra {extra}: BLEU {rows[-1][3]:.2f}, "
            f"at the length bound {at_bound}/{len(sources)}, "
            f"a word 3x in a row {repeated}/{len(sources)}",
            flush=True,
        )
    return trained.step, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--beams", default="4")
    parser.add_argument("--alphas", default="0.6")
    parser.add_argument("--extra_lengths", default="50")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    def numbers(text, kind):
        return [kind(x) for x in text.split(",") if x]

    step, _ = study(
        args.output_dir,
        numbers(args.beams, int),
        numbers(args.alphas, float),
        numbers(args.extra_lengths, int),
        args.samples,
    )
    print(f"(checkpoint at step {step})")


if __name__ == "__main__":
    main()
