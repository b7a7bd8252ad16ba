"""onnxruntime sessions for bundle graphs, and the step-graph runner that keeps recurrent state
where the graph runs (IO binding on GPU). numpy + onnxruntime only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from export.runtime.bundle import BundleError


def create_session(
    path: str, device: str = "cpu", threads: int | None = None, spin_us: int | None = None
):
    """An onnxruntime session for ``path`` on ``device`` ("cpu" or "cuda").

    ``spin_us``: how long the session's idle worker threads busy-wait for the next call before
    they sleep; 0 turns spinning off, None keeps onnxruntime's default. A graph that runs once
    per batch (the encoder) must not spin: its workers would keep burning cores while the step
    graph runs, which on a 2-core machine halved batch-1 decoding speed. A step graph called in
    a tight loop gains from spinning across the short gaps in which the search picks tokens."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if spin_us == 0:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif spin_us is not None:
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(int(spin_us)))
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(
                "device cuda needs onnxruntime with CUDA support: pip install onnxruntime-gpu "
                f"(available here: {', '.join(ort.get_available_providers())})"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types
        raise BundleError(f"{path}: onnxruntime cannot load this graph ({error})") from None


# busy-wait between decoding steps: longer than the search's work between two steps (about
# 0.1-0.2 ms), short enough to stop soon after decoding ends (scripts/bench_decode.py)
STEP_SPIN_US = 1000


class StepGraph:
    """Runs a step graph whose recurrent state stays where the graph runs.

    With ``io_binding`` the state outputs of one call are bound as inputs of the next without
    leaving the device (on GPU: no copies between steps); only the log-probabilities come back
    to the host, for the search. Without it, plain ``session.run`` on numpy arrays (on CPU this
    is as fast and simpler). Per-call constant inputs (encoder memory) are bound once per change.
    """

    def __init__(self, session, state_names: Sequence[str], device: str, io_binding: bool):
        self.session = session
        self.state_names = list(state_names)
        self.device = device
        self.io_binding = io_binding
        self.output_names = [o.name for o in session.get_outputs()]
        self.constants: dict = {}
        self.state: list = []

    def set_constants(self, arrays: dict) -> None:
        """Inputs that stay the same from step to step (until set again)."""
        if self.io_binding:
            import onnxruntime as ort

            arrays = {
                k: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v), self.device, 0)
                for k, v in arrays.items()
            }
        self.constants = arrays

    def set_state(self, arrays: Sequence[np.ndarray]) -> None:
        self.state = list(arrays)

    def run(self, inputs: dict) -> np.ndarray:
        """Feed ``inputs`` (host arrays) with the constants and the current state; keep the new
        state; return the first output (log-probabilities) as a host array."""
        if not self.io_binding:
            feeds = dict(inputs)
            feeds.update(self.constants)
            feeds.update(zip(self.state_names, self.state))
            outputs = self.session.run(None, feeds)
            self.state = outputs[1:]
            return outputs[0]
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name, value in self.constants.items():
            binding.bind_ortvalue_input(name, value)
        for name, value in zip(self.state_names, self.state):
            if isinstance(value, np.ndarray):
                value = ort.OrtValue.ortvalue_from_numpy(
                    np.ascontiguousarray(value), self.device, 0
                )
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.output_names[0], "cpu")
        for name in self.output_names[1:]:
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        self.state = list(outputs[1:])
        return outputs[0].numpy()


def io_binding_default(device: str, io_binding: bool | None) -> bool:
    """IO binding is on by default on cuda (the state stays on the GPU), off on cpu."""
    return device == "cuda" if io_binding is None else io_binding


def check_graph_inputs(session, path: str, expected: Sequence[str]) -> None:
    """Refuse a graph whose inputs are not ``expected`` (in order) with a :class:`BundleError`:
    a bundle whose graphs and manifest disagree would fail later, deep inside onnxruntime."""
    found = [i.name for i in session.get_inputs()]
    if found != list(expected):
        raise BundleError(f"{path}: inputs are {found}, expected {list(expected)}")
