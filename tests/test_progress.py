"""mammogan_lib.core.progress and mammogan_lib.core.terminal: what a running stage shows in the terminal."""

import io
import os
import re
import threading
import time

import pytest

from mammogan_lib.core import progress, terminal

TENSORFLOW_START_UP = [  # as a CPU-only machine's kernel prints them when TensorFlow is imported
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796188681.891408    7814 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796188681.892848    7814 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796188688.477101    7814 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796188691.710042    7814 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT",
    "E0000 00:00:1796634972.509234    2195 util.cc:131] oneDNN supports DT_INT64 only on platforms with "
    "AVX-512. Falling back to the default Eigen-based implementation if present.",
    "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication",
    "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.",
]
REAL_MESSAGES = [
    "warning: inception has RANDOM weights (no pretrained weights found)",
    "Traceback (most recent call last):",
    "E0000 00:00:1796188691.710042    7814 bfc_allocator.cc:485] Allocator ran out of memory",
    "[IPKernelApp] ERROR | Exception in message handler:",
    "RuntimeWarning: invalid value encountered in divide",
]


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "logs" / "03_train_gan.progress.json"
    monkeypatch.setenv(progress.PROGRESS_FILE_VARIABLE, str(path))
    monkeypatch.setattr(progress, "WRITE_INTERVAL_S", 0.0)
    return path


def test_a_bar_writes_what_it_shows_to_the_progress_file(progress_file):
    with progress.tqdm(total=10, desc="training smoke", unit="epoch", initial=0) as bar:
        bar.initial = 4  # resumed at epoch 4: the rate counts this session's epochs only
        bar.n = 6
        bar.set_postfix({"D": "1.38", "G": "0.70"}, refresh=True)
        state = progress.read_progress(progress_file)["bar"]
        assert (state["desc"], state["n"], state["total"], state["unit"]) == (
            "training smoke",
            6,
            10,
            "epoch",
        )
        assert state["postfix"] == "D=1.38, G=0.70" and not state["closed"]
        assert state["rate"] == pytest.approx(2 / state["elapsed"])
    assert progress.read_progress(progress_file)["bar"]["closed"]
    progress.warn("inception has RANDOM weights")
    progress.warn("time budget reached")
    assert progress.read_progress(progress_file)["warnings"] == [
        "inception has RANDOM weights",
        "time budget reached",
    ]


def test_without_the_pipeline_a_bar_writes_nothing_and_a_warning_goes_to_stderr(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv(progress.PROGRESS_FILE_VARIABLE, raising=False)
    for _ in progress.tqdm(range(3), desc="by hand"):
        pass
    progress.warn("something to know")
    assert "warning: something to know" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_under_the_pipeline_a_bar_leaves_one_line_in_the_notebook_and_a_warning_is_given_once(
    progress_file, capsys
):
    with progress.tqdm(total=12, desc="training tiny", unit="epoch") as bar:
        for epoch in range(12):
            bar.update(1)
            bar.set_postfix({"D": f"{1 + epoch / 100:.2f}"}, refresh=True)
    shown = capsys.readouterr()
    assert shown.err == ""  # no redraws
    assert re.fullmatch(r"training tiny: 12 of 12 epoch in 00:0\d · D=1\.11\n", shown.out)
    assert progress.read_progress(progress_file)["bar"]["n"] == 12
    for _ in range(3):
        progress.warn("inception has RANDOM weights")
    assert capsys.readouterr().out == "warning: inception has RANDOM weights\n"
    assert progress.read_progress(progress_file)["warnings"] == ["inception has RANDOM weights"]


def test_python_warnings_become_one_plain_line_each_once(capsys, monkeypatch):
    import warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    progress.warnings_as_lines()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for _ in range(3):
            warnings.warn("the covariance is singular", RuntimeWarning, stacklevel=1)
    shown = capsys.readouterr()
    assert shown.err == ""
    assert re.fullmatch(
        r"warning \(test_progress\.py:\d+\) RuntimeWarning: the covariance is singular\n", shown.out
    )


def test_a_bar_reads_with_its_eta_and_losses():
    running = {"desc": "training smoke", "n": 300, "total": 1200, "unit": "epoch", "postfix": "D=1.37"}
    assert (
        terminal.describe_bar({**running, "rate": 2.0})
        == "training smoke 300/1,200 epoch · ETA 7:30 · D=1.37"
    )
    assert "· ETA 5:00:00 ·" in terminal.describe_bar({**running, "rate": 0.05})
    assert "ETA" not in terminal.describe_bar({**running, "rate": 2.0, "closed": True})
    assert terminal.describe_bar({"desc": "scoring", "n": 7, "total": None, "unit": "it"}) == "scoring 7 it"


def test_start_up_noise_is_recognised_and_real_messages_are_not():
    assert all(terminal.is_startup_noise(line) for line in TENSORFLOW_START_UP)
    assert not any(terminal.is_startup_noise(line) for line in REAL_MESSAGES)


def test_kernel_output_keeps_every_line_in_the_log_and_shows_only_what_matters(tmp_path):
    for verbose in (False, True):
        shown: list[str] = []
        output = terminal.KernelOutput(tmp_path / f"{verbose}.log", shown.append, verbose)
        with os.fdopen(os.dup(output.write_end), "w") as kernel_stderr:
            kernel_stderr.write("\n".join(TENSORFLOW_START_UP + REAL_MESSAGES) + "\n")
        output.close()
        assert (tmp_path / f"{verbose}.log").read_text().splitlines() == TENSORFLOW_START_UP + REAL_MESSAGES
        assert shown == (TENSORFLOW_START_UP + REAL_MESSAGES if verbose else REAL_MESSAGES)


def write_progress_while(path, states, pause):
    """Write each state to the progress file in turn, ``pause`` seconds apart (what a kernel does)."""

    def write():
        channel = progress._Channel(path)
        for state in states:
            channel.state = state
            channel.write(force=True)
            time.sleep(pause)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = threading.Thread(target=write)
    writer.start()
    return writer


def bar(desc, n, total, closed=False):
    return {"desc": desc, "n": n, "total": total, "unit": "it", "postfix": "", "rate": 10.0, "closed": closed}


def test_in_a_log_each_bar_gets_a_plain_line_when_it_starts_and_ends_and_warnings_a_line_each(tmp_path):
    path = tmp_path / "progress.json"
    states = [
        {"bar": bar("inception: train", 1, 4), "warnings": []},
        {"bar": bar("inception: train", 2, 4), "warnings": ["inception has RANDOM weights"]},
        {"bar": bar("inception: train", 4, 4, closed=True), "warnings": ["inception has RANDOM weights"]},
        {"bar": bar("checkpoints", 1, 2), "warnings": ["inception has RANDOM weights", "budget"]},
    ]
    stream = io.StringIO()
    shown = terminal.Terminal(stream, live=False, plain_interval_s=3600)
    with shown.watching("05_metrics", 5, 6, path):
        write_progress_while(path, states, pause=1.2).join()
    lines = stream.getvalue().splitlines()
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()
    assert [line for line in lines if "warning" in line] == [
        "[05_metrics] warning: inception has RANDOM weights",
        "[05_metrics] warning: budget",
    ]
    bars = [line.split(" · ", 2)[2] for line in lines if "warning" not in line]
    assert bars == [
        "inception: train 1/4 it · ETA 0:00",
        "inception: train 4/4 it",
        "checkpoints 1/2 it · ETA 0:00",
    ]
    assert all(line.startswith("[05_metrics] 5/6 · ") for line in lines if "warning" not in line)


def test_on_a_terminal_the_live_line_is_redrawn_in_place_and_cleared_for_messages(tmp_path):
    path = tmp_path / "progress.json"
    stream = io.StringIO()
    shown = terminal.Terminal(stream, live=True)
    with shown.watching("03_train_gan", 3, 6, path):
        write_progress_while(path, [{"bar": bar("training", 3, 8), "warnings": []}], pause=1.2).join()
        shown.line("[03_train_gan] a message")
    text = stream.getvalue()
    assert "[03_train_gan] 3/6 · 0:0" in text and "training 3/8 it · ETA 0:00" in text
    assert "\r\x1b[2K[03_train_gan] a message\n" in text  # the live line cleared first
    assert text.endswith("\r\x1b[2K") or text.endswith("\n")  # nothing left half-drawn
