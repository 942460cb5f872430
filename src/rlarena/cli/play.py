"""`rlarena play connect4`: serve a page where a person plays Connect Four against an agent.

The agent is served by onnxruntime alone: the shipped agent's model.onnx by default, another exported
model with --onnx, or a checkpoint's trained policy with --checkpoint (exported to a temporary .onnx
first, the only step that needs torch). The page offers its network alone, the search agent at a few
simulation counts (numpy MCTS over the same model: when the model is an AlphaZero network, i.e. its
checkpoint's rlarena_checkpoint.json says "AlphaZero", or when --search asks), and negamax at depth 1..7.
This module stays light (argparse only): rlarena.cli.main imports it to build the parser.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from rlarena.cli.trust import add_trust_module
from rlarena.errors import ConfigError

DEFAULT_PORT = 7860  # Gradio's own default


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def _levels(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "none":
        return ()
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        levels = ()
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of simulation counts such as 50,200,800 (each at least 1), or 'none'"
        )
    return tuple(sorted(set(levels)))


def add_play(p: argparse.ArgumentParser) -> None:
    p.add_argument("game", choices=("connect4",), help="the game to play")
    agent = p.add_mutually_exclusive_group()
    agent.add_argument(
        "--checkpoint",
        metavar="PATH",
        default=None,
        help="play this checkpoint's 'learned' policy, or its only one (exported to ONNX first; that step needs torch)",
    )
    agent.add_argument(
        "--onnx", metavar="PATH", default=None, help="play this exported model (None: the agent shipped with rlarena)"
    )
    p.add_argument(
        "--search",
        type=_levels,
        default=None,
        metavar="N,N,...",
        help="the search agent's levels, in simulations per move (e.g. 50,200,800; 'none' for no search "
        "levels). Default: 50,200,800,8000 for an AlphaZero network (its checkpoint's "
        "rlarena_checkpoint.json, next to the .onnx file for --onnx, names the algorithm), none "
        "for another (a PPO value head does not estimate the game's result)",
    )
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, metavar="N", help="port to serve on")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="H",
        help="address to serve on (0.0.0.0: every interface of this machine, so anyone who can "
        "reach it can play; the page still refuses uploads, other sites' requests and "
        "host names that are not this machine's)",
    )
    add_trust_module(p)  # for --checkpoint


def run_play(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.games.connect_four.app import (
        SHIPPED_ONNX,
        build_app,
        checkpoint_algorithm,
        page_opponents,
        search_levels,
    )

    # the cheap checks first: a mistyped path is reported before gradio (seconds to import) loads
    given = args.checkpoint or args.onnx
    if given is not None and not Path(given).exists():
        what = (
            "checkpoint directory written by `rlarena train`"
            if args.checkpoint
            else ".onnx file written by `rlarena export`"
        )
        raise ConfigError(f"No such file or directory: {given}. Give the path of a {what}.")
    if given is None and not SHIPPED_ONNX.is_file():
        raise ConfigError(
            f"The shipped agent's model is missing ({SHIPPED_ONNX}); reinstall rlarena, "
            f"or play another exported model with --onnx PATH."
        )
    # Gradio reports usage and checks for new versions over the network unless told not to
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401  # fail here with the extra to install, before exporting or loading a model
    except ModuleNotFoundError:
        raise ConfigError("`rlarena play` needs gradio: pip install 'rlarena[app]'") from None

    with tempfile.TemporaryDirectory(prefix="rlarena-play-") as tmp:
        if args.checkpoint is not None:
            from rlarena.cli.rollout import resolve_checkpoint

            checkpoint = resolve_checkpoint(args.checkpoint)
            algorithm = checkpoint_algorithm(checkpoint)
            name = f"agent ({Path(args.checkpoint).name})"
            model = export_checkpoint(checkpoint, Path(tmp), args.trusted_modules)
        else:
            model = Path(args.onnx) if args.onnx is not None else SHIPPED_ONNX
            name = f"agent ({model.name})" if args.onnx is not None else "shipped agent"
            algorithm = checkpoint_algorithm(model.parent)  # an .onnx file kept in its checkpoint's directory
        levels = search_levels(algorithm, args.search)
        play = page_opponents(model, levels)
        from rlarena.games.connect_four.app import exposure_notice, page_url, serve

        offered = (
            f"its network alone, search at {','.join(map(str, levels))} simulations" if levels else "its network alone"
        )
        banner = (
            f"Connect Four against {name} ({model}: {offered}) or negamax_1..7: open "
            f"{page_url(args.host, args.port)} (Ctrl+C to stop)"
        )
        notice = exposure_notice(args.host, args.port)
        banner = f"{banner}\n{notice}" if notice else banner
        serve(build_app(play), host=args.host, port=args.port, banner=banner)
    return 0


def export_checkpoint(checkpoint: str, directory: Path, trusted_modules: list[str] | None = None) -> Path:
    """The checkpoint's trained policy ("learned"; the only policy of a checkpoint that has one, as
    AlphaZero's) as directory/model.onnx. Torch is imported for this step only; the page then plays
    the exported file with onnxruntime, as it plays the shipped agent."""
    from rlarena.algorithms import Algorithm
    from rlarena.cli.arena import trained_policy_id
    from rlarena.cli.rollout import INFERENCE_OVERRIDES, resolve_checkpoint

    algo = Algorithm.from_checkpoint(
        resolve_checkpoint(checkpoint), config_overrides=dict(INFERENCE_OVERRIDES), trusted_modules=trusted_modules
    )
    try:
        return algo.export_onnx(directory / "model.onnx", trained_policy_id(algo))
    finally:
        algo.stop()
