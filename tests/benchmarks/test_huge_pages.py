"""benchmarks.huge_pages: the GLIBC_TUNABLES setting, the kernel's THP mode, the AnonHugePages
figure, and when a benchmark restarts itself."""

import sys

import pytest

from benchmarks import bench_step, huge_pages


@pytest.mark.parametrize(
    "tunables, on, expected",
    [
        (None, True, "glibc.malloc.hugetlb=1"),
        ("", False, ""),
        ("glibc.malloc.arena_max=2", True, "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
        (
            "glibc.malloc.hugetlb=2:glibc.malloc.arena_max=2",
            True,
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
        ),
        ("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", False, "glibc.malloc.arena_max=2"),
    ],
)
def test_with_setting_keeps_the_other_tunables(tunables, on, expected):
    assert huge_pages.with_setting(tunables, on) == expected


def test_requested_reads_the_setting_exactly():
    assert huge_pages.requested({"GLIBC_TUNABLES": "a=1:glibc.malloc.hugetlb=1"})
    assert not huge_pages.requested({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=2"})
    assert not huge_pages.requested({})


@pytest.mark.parametrize(
    "text, mode",
    [
        ("always [madvise] never\n", "madvise"),
        ("[always] madvise never\n", "always"),
        ("always madvise [never]\n", "never"),
        ("garbled\n", None),
    ],
)
def test_thp_mode(tmp_path, text, mode):
    path = tmp_path / "enabled"
    path.write_text(text)
    assert huge_pages.thp_mode(str(path)) == mode


def test_thp_mode_and_huge_mib_of_a_missing_file(tmp_path):
    assert huge_pages.thp_mode(str(tmp_path / "none")) is None
    assert huge_pages.huge_mib(str(tmp_path / "none")) is None


def test_huge_mib_from_smaps_rollup(tmp_path):
    path = tmp_path / "smaps_rollup"
    path.write_text("Rss:             1076660 kB\nAnonHugePages:    614400 kB\nSwap: 0 kB\n")
    assert huge_pages.huge_mib(str(path)) == 600.0
    path.write_text("Rss:             1076660 kB\n")
    assert huge_pages.huge_mib(str(path)) is None


def _restart(monkeypatch, environ, on, unavailable=None):
    monkeypatch.setattr(huge_pages, "available", lambda: unavailable)
    calls = []
    huge_pages.restart_with(on, environ, execve=lambda *a: calls.append(a))
    return calls


def test_restart_adds_the_setting_and_marks_the_restart(monkeypatch):
    calls = _restart(monkeypatch, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, True)
    ((path, argv, env),) = calls
    assert path == sys.executable and argv[0] == sys.executable
    assert argv[1:] == sys.orig_argv[1:]
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert env["SM3_BENCH_PAGES_RESTARTED"] == "1"


def test_restart_removes_the_setting_for_4k_pages(monkeypatch):
    ((_, _, env),) = _restart(monkeypatch, {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, False)
    assert "GLIBC_TUNABLES" not in env


@pytest.mark.parametrize(
    "environ, on, unavailable",
    [
        ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, True, None),  # already so
        ({}, False, None),  # already so
        ({"SM3_BENCH_PAGES_RESTARTED": "1"}, True, None),  # restarted once: never loops
        ({}, True, "transparent huge pages are off (THP mode never)"),  # nothing to gain
    ],
)
def test_no_restart(monkeypatch, environ, on, unavailable):
    assert _restart(monkeypatch, environ, on, unavailable) == []


def test_bench_step_pages_flag_and_caption():
    assert bench_step.parse_args([]).huge_pages
    assert not bench_step.parse_args(["--no-huge-pages"]).huge_pages
    workload = {"huge_mib": {"tf": 1536.0, "torch_adam": None}}
    assert bench_step.pages_note(workload) == "; on 2 MiB pages: tf 1536 MiB"
    assert bench_step.pages_note({}) == ""


def test_the_torch_worker_reports_its_huge_pages():
    import io
    import json

    from benchmarks import torch_adam_worker

    if torch_adam_worker.unavailable_reason():
        pytest.skip(torch_adam_worker.unavailable_reason())
    requests = [{"cmd": "hello"}, {"cmd": "build", "shapes": [[4, 4]]}, {"cmd": "quit"}]
    out = io.StringIO()
    torch_adam_worker.serve(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), out)
    built = json.loads(out.getvalue().splitlines()[1])
    assert built["params"] == 16
    # The same process here: a figure where the kernel gives one (Linux), else None.
    assert isinstance(built["huge_mib"], type(huge_pages.huge_mib()))


def test_bench_step_measures_each_workload_in_a_process_of_its_own():
    args = bench_step.parse_args(
        ["--matrices", "64x64,32x16", "--contenders", "sm3,adam", "--repeats", "2",
         "--no-huge-pages"]
    )  # fmt: skip
    common = ["--contenders", "sm3,adam", "--repeats", "2", "--shapes", "", "--no-huge-pages"]
    assert bench_step.workload_arguments(args) == [
        ["--model", "transformer_big", "--matrices", "", *common],
        ["--model", "none", "--matrices", "64x64", *common],
        ["--model", "none", "--matrices", "32x16", *common],
    ]
    for arguments in bench_step.workload_arguments(args):  # each parses as one workload
        child = bench_step.parse_args([*arguments, "--results-json", "out.json"])
        assert len(child.matrix_shapes) + (child.model != "none") == 1
        assert child.names == ["sm3", "adam"] and not child.huge_pages
    args = bench_step.parse_args(["--model", "none", "--probe-non-temporal"])
    (only,) = bench_step.workload_arguments(args)
    assert only[:4] == ["--model", "none", "--matrices", "8192x8192"]
    assert only[-2:] == ["--huge-pages", "--probe-non-temporal"]


def test_bench_step_refuses_a_results_path_it_cannot_write(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_step.parse_args(["--results-json", str(tmp_path / "no_such_dir" / "w.json")])
    assert "--results-json" in capsys.readouterr().err
    for not_a_file in ("", str(tmp_path)):
        with pytest.raises(SystemExit):
            bench_step.parse_args(["--results-json", not_a_file])
        assert "--results-json must name a file" in capsys.readouterr().err
    assert bench_step.parse_args(["--results-json", str(tmp_path / "w.json")]).results_json


def test_describe_says_which_pages_and_why(monkeypatch):
    monkeypatch.setattr(huge_pages, "available", lambda: None)
    on = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    assert "2 MiB" in huge_pages.describe(True, on)
    assert huge_pages.describe(False, on).startswith("memory pages: 4 KiB (--no-huge-pages")
    assert "started without glibc.malloc.hugetlb=1" in huge_pages.describe(True, {})
    monkeypatch.setattr(huge_pages, "available", lambda: "not a glibc system")
    assert huge_pages.describe(True, on) == (
        "memory pages: 4 KiB (2 MiB pages asked for, but not a glibc system)"
    )


def test_the_step_ab_takes_the_same_pages_flag():
    from benchmarks import bench_fused_ab

    assert bench_fused_ab.parse_args([]).huge_pages
    assert not bench_fused_ab.parse_args(["--no-huge-pages"]).huge_pages
