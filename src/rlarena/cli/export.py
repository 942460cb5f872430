"""`rlarena export CHECKPOINT --onnx model.onnx [--policy-id ID]`: a checkpoint's policy as an ONNX
model that onnxruntime plays alone (rlarena.export.onnx)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlarena.cli.trust import add_trust_module


def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint directory (or a trial directory: its latest checkpoint)")
    p.add_argument(
        "--onnx",
        metavar="PATH",
        required=True,
        help="write the policy here as ONNX: the observation (packed as one row for images, dicts and "
        "custom models; + action_mask, + state_in for memory) in; logits (masked) or the Box mean, then the "
        "value (+ state_out), out; dynamic batch",
    )
    p.add_argument(
        "--policy-id",
        default=None,
        metavar="ID",
        help="the policy to export (None: the checkpoint's only trained policy)",
    )
    add_trust_module(p)


def run_export(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.algorithms import Algorithm
    from rlarena.cli.rollout import INFERENCE_OVERRIDES, resolve_checkpoint
    from rlarena.errors import ConfigError
    from rlarena.export.onnx import OnnxPolicy
    from rlarena.policies.torch_policy import TrainablePolicy

    path = resolve_checkpoint(args.checkpoint)
    algo = Algorithm.from_checkpoint(
        path, config_overrides=dict(INFERENCE_OVERRIDES), trusted_modules=args.trusted_modules
    )
    try:
        policy_id = args.policy_id
        if policy_id is None:  # the usual case: one trained policy (any others are heuristics)
            trained = [pid for pid, p in algo.policies.items() if isinstance(p, TrainablePolicy)]
            if len(trained) != 1:
                raise ConfigError(
                    f"{path!r} holds {len(trained)} trained policies ({', '.join(trained)}): pick one with --policy-id."
                )
            policy_id = trained[0]
        out = algo.export_onnx(args.onnx, policy_id)
    finally:
        algo.stop()
    # read back with onnxruntime: what we print is what a consumer will see
    served = OnnxPolicy(out)
    ios = [f"{i.name} {_shape(i.shape)}" for i in served.session.get_inputs()]
    outs = [f"{o.name} {_shape(o.shape)}" for o in served.session.get_outputs()]
    print(
        f"wrote {out} ({Path(out).stat().st_size / 1024:.0f} KiB): policy {policy_id!r} of "
        f"{type(algo).__name__} on {algo.env_name}; inputs {', '.join(ios)}; outputs {', '.join(outs)}"
    )
    return 0


def _shape(dims: list) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"
