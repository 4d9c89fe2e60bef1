"""The benchmarks behind the tables and figures in docs/; run from the repository root:

    python -m benchmarks.run_all                 # everything (`make bench`)
    python -m benchmarks.bench_step --help       # one part

They use the installed `sm3_tf` and `sm3_t2t` (`make setup` installs this checkout in editable
mode, so the code measured is the code here), the optimizers of `benchmarks.roster`, and write
their results through `benchmarks.docs_output`.
"""
