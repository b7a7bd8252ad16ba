"""scripts/gpu_check.py on what a CPU can check: its comparisons, its exit status (non-zero on
any mismatch), and a dry run of every check with --device cpu (the GPU-only rows skipped)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def test_the_comparisons(gpu_check):
    assert gpu_check.relative_gap([1.0, 2.0], [1.0, 2.0]) == 0
    assert gpu_check.relative_gap([1.0, 2.002], [1.0, 2.0]) == pytest.approx(1e-3)
    assert gpu_check.relative_gap([1.0], [1.0, 2.0]) == float("inf")  # a run stopped early
    assert gpu_check.relative_gap([float("nan")], [1.0]) == float("inf")
    assert gpu_check.scale_drops([65536, 32768, 32768, 65536, 16384]) == 2
    assert gpu_check.median_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 2.0]) == 2.0
    names = ["void RNN_blockPersist_fp_LSTM<float>", "ampere_sgemm_128x64", "elemWiseRNNcell"]
    assert gpu_check.cudnn_rnn_kernels(names) == sorted([names[0], names[2]])


def test_any_failed_check_makes_the_exit_status_non_zero(gpu_check, monkeypatch, capsys):
    report = gpu_check.Report()
    report.add("versions", "torch 2")
    report.skip("peak GPU memory", "needs CUDA")
    assert report.exit_status() == 0
    report.add("fp32 loss parity", "largest relative gap 3e-2", False)
    assert report.exit_status() == 1 and [row.check for row in report.failed] == [
        "fp32 loss parity"
    ]
    assert "| fp32 loss parity | FAIL    | largest relative gap 3e-2 |" in report.table()

    def mismatch(report, *args):
        report.add("IO-binding greedy == torch greedy", "15 of 16 token-identical", False)

    for name in dir(gpu_check):
        if name.startswith("check_"):
            monkeypatch.setattr(gpu_check, name, lambda report, *args: None)
    monkeypatch.setattr(gpu_check, "check_decoding", mismatch)
    assert gpu_check.main(["--device", "cpu"]) == 1
    assert "1 check(s) failed" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a GPU-less machine")
def test_asking_for_cuda_without_a_gpu_says_how_to_dry_run(gpu_check, capsys):
    assert gpu_check.main([]) == 2
    assert "use --device cpu for a dry run" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_dry_run_on_the_cpu_passes_every_check_it_can_run(tmp_path):
    rows_file = tmp_path / "rows.json"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--threads", "1"]
    done = subprocess.run(
        [*command, "--json", str(rows_file)], cwd=ROOT, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "every check passed" in done.stdout
    verdicts = {row["check"]: row["verdict"] for row in json.loads(rows_file.read_text())}
    assert verdicts["fp32 loss parity CPU vs cpu, 10 updates (TF32 off)"] == "ok"
    assert verdicts["torchrun world size 1 on gloo"] == "ok"
    assert verdicts["IO-binding greedy == torch greedy"] == "ok"
    for gpu_only in (
        "AMP fp16 vs fp32, 30 updates",
        "peak GPU memory vs batch_tokens",
        "onnxruntime CUDA provider first",
    ):
        assert verdicts[gpu_only] == "skip"
    assert set(verdicts.values()) <= {"ok", "info", "skip"}
