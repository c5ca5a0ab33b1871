"""`python -m fastvision` is the command line."""

import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastvision", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("fastvision ")
    assert "train" in run("--help").stdout


def test_a_bad_flag_exits_1_naming_it():
    r = run("train", "--epochs", "many")
    assert r.returncode == 1 and "--epochs" in r.stderr


def test_an_error_is_one_line_and_exit_1(tmp_path):
    r = run("predict", str(tmp_path / "missing"), str(tmp_path / "x.png"))
    lines = r.stderr.splitlines()
    assert r.returncode == 1 and lines[0].startswith("device:") and len(lines) == 2
    assert lines[1].startswith("error: ") and lines[1].count("No such file") == 1


def test_launch_trains_on_two_ranks_through_the_python_door(penguins, tmp_path):
    """The ranks `launch` starts run `python -m fastvision` with this interpreter (a wheel built
    with the `distributed` feature; without it, `launch` says which feature it needs)."""
    r = subprocess.run(
        [sys.executable, "-m", "fastvision", "launch", "--nproc", "2", "--threads", "1", "--",
         "tabular", "train", penguins, "--target", "species", "--epochs", "2", "--name", "dp"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    if "`distributed` feature" in r.stderr:
        assert r.returncode == 1
        return
    assert r.returncode == 0, r.stderr
    assert "data parallel over 2 ranks" in r.stdout
    assert (tmp_path / "runs" / "dp" / "model.safetensors").is_file()
