"""What the sm3-trainer and sm3-decoder command lines share: a --help that lists their flags,
registry look-ups that name the flag, and usage errors as one line with exit code 2."""

import sys

from absl import flags

from sm3_t2t import registry

USAGE_ERROR_EXIT_CODE = 2


def list_flags_in_help(flag_module_names, usage):
    """Makes absl's --help show `usage` and the flags the named modules define.

    absl's --help shows the main module's docstring and key flags, where the main module is
    sys.argv[0]. A console script's main module is its few-line launcher, which has neither; so the
    flags are declared key flags of it too, and `usage` becomes its docstring when it has none.
    """
    for module_name in flag_module_names:
        for flag in flags.FLAGS.get_key_flags_for_module(module_name):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules.get("__main__")
    if main_module is not None and not main_module.__doc__:
        main_module.__doc__ = usage


def look_up(flag_name, value, getter):
    """`getter(value)`, with a registry's "did you mean" turned into a ValueError naming the flag.

    Raises:
      ValueError: `--flag_name=value: Unknown ... Did you mean: ...? Registered ...: ...`.
    """
    try:
        return getter(value)
    except registry.UnknownNameError as error:
        raise ValueError(f"--{flag_name}={value}: {error}") from None


def exit_with_usage_error(program, error):
    """Prints `program: error` as one line on stderr and exits with code 2 (no traceback)."""
    message = " ".join(str(error).split())
    print(f"{program}: {message}", file=sys.stderr, flush=True)
    sys.exit(USAGE_ERROR_EXIT_CODE)
