"""The parameters every learned method takes, torch-free so that listing methods needs no torch."""

from __future__ import annotations

from inpaint_core.method import Parameter, ParamType

WEIGHTS_DIR_ENV = "INPAINT_WEIGHTS_DIR"
WEIGHTS_PARAMETER = Parameter(
    "weights",
    ParamType.PATH,
    None,
    "Installed published weights by catalogue name (`inpaint weights list`), or a "
    "NAME.safetensors file (with its NAME.json sidecar) from `inpaint weights import` or "
    "`inpaint train`; unset = the shipped weights.",
)
DEVICE_PARAMETER = Parameter(
    "device", ParamType.STR, "auto", "Where the network runs: auto, cpu, cuda, cuda:N or mps."
)
PRECISION_PARAMETER = Parameter(
    "precision",
    ParamType.CHOICE,
    "auto",
    "Network arithmetic: auto (bf16 autocast on CUDA where supported, else fp16; fp32 "
    "elsewhere), fp32, or bf16 / fp16 autocast (CUDA only).",
    choices=("auto", "fp32", "bf16", "fp16"),
)
BACKEND_PARAMETER = Parameter(
    "backend",
    ParamType.CHOICE,
    "auto",
    "How the network is executed: eager (PyTorch), compile (torch.compile; the first tile "
    "of each size compiles), onnx (ONNX Runtime, CPU, fp32; needs "
    "`pip install 'napari-inpaint[onnx]'`) or auto: compile on the CPU for a window size a "
    "tiled restore passes often enough to repay the compilation (measured per method in "
    "benchmarks/RESULTS.md), eager otherwise.",
    choices=("auto", "eager", "compile", "onnx"),
)
#: The parameters every learned method takes first: its weights, device, precision, backend.
LEARNED_PARAMETERS: tuple[Parameter, ...] = (
    WEIGHTS_PARAMETER,
    DEVICE_PARAMETER,
    PRECISION_PARAMETER,
    BACKEND_PARAMETER,
)
