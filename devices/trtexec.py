"""The ``trtexec`` command line equivalent to one Python engine build, per TensorRT version.

Written beside every plan and into every bundle's build plans, so a device
without emotrt (or a person debugging a build) can reproduce it exactly.
Version differences come from :mod:`emotrt.devices.trt_compat`.

Flags, as documented by NVIDIA (trtexec reference, "Command-Line Programs",
docs.nvidia.com/deeplearning/tensorrt/10.8.0/reference/command-line-programs.html;
migration appendices 8.x -> 10.x and 10.x -> 11.x):
``--onnx``, ``--saveEngine``; ``--memPoolSize=workspace:<MiB>`` (8.4+, replaces
``--workspace``); ``--shapes=name:AxB`` only for dynamic inputs (static models
take their shapes from the graph); ``--timingCacheFile``; ``--fp16``/``--int8`` and
``--calib=<cache>`` up to 10.x, removed in 11; ``--stronglyTyped`` on 10.x (always
on, so omitted, on 11); ``--builderOptimizationLevel`` from 8.6; ``--useDLACore`` +
``--allowGPUFallback``; ``--profilingVerbosity=detailed``; ``--buildOnly`` (8.5) /
``--skipInference`` (8.6+) to build without benchmarking.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from emotrt.devices.trt_compat import BuildRecipe, features


@dataclass(frozen=True)
class TrtexecSpec:
    """Everything a trtexec build line needs; paths as they will be on the device."""

    onnx: str
    plan: str
    recipe: BuildRecipe
    tensorrt: str
    workspace_mib: int
    dynamic_shapes: Dict[str, Tuple[int, ...]]
    timing_cache: Optional[str] = None
    calib_cache: Optional[str] = None
    dla_core: Optional[int] = None
    gpu_fallback: bool = True
    opt_level: int = 3


def _shape(dims: Tuple[int, ...]) -> str:
    return "x".join(str(d) for d in dims)


def trtexec_args(spec: TrtexecSpec) -> List[str]:
    """The argument list (first item ``trtexec``)."""
    f = features(spec.tensorrt)
    args = ["trtexec", "--onnx=" + spec.onnx, "--saveEngine=" + spec.plan]
    if spec.dynamic_shapes:
        args.append("--shapes=" + ",".join("{}:{}".format(n, _shape(d)) for n, d in sorted(spec.dynamic_shapes.items())))
    args.append("--memPoolSize=workspace:{}".format(int(spec.workspace_mib)))
    if spec.recipe.strongly_typed and not f.strongly_typed_always:
        args.append("--stronglyTyped")
    args += ["--" + flag for flag in spec.recipe.flags]
    if spec.recipe.calib_cache and spec.calib_cache:
        args.append("--calib=" + spec.calib_cache)
    if f.opt_level:
        args.append("--builderOptimizationLevel={}".format(spec.opt_level))
    if spec.dla_core is not None:
        args.append("--useDLACore={}".format(spec.dla_core))
        if spec.gpu_fallback:
            args.append("--allowGPUFallback")
    if spec.timing_cache:
        args.append("--timingCacheFile=" + spec.timing_cache)
    args += ["--profilingVerbosity=detailed", f.build_only_flag]
    return args


def trtexec_line(spec: TrtexecSpec) -> str:
    """The command as one shell-quoted line."""
    return " ".join(shlex.quote(a) for a in trtexec_args(spec))
