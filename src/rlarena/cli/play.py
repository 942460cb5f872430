"""`rlarena play connect4`: serve a page where a person plays Connect Four against an agent.

The agent is served by onnxruntime alone: the shipped agent's model.onnx by default, another exported
model with --onnx, or a checkpoint's "learned" policy with --checkpoint (exported to a temporary .onnx
first, the only step that needs torch). The page also offers negamax at depth 1..7.
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


def add_play(p: argparse.ArgumentParser) -> None:
    p.add_argument("game", choices=("connect4",), help="the game to play")
    agent = p.add_mutually_exclusive_group()
    agent.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="play this checkpoint's 'learned' policy (exported to ONNX first; that step needs torch)")
    agent.add_argument("--onnx", metavar="PATH", default=None,
                       help="play this exported model (None: the agent shipped with rlarena)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT, metavar="N", help="port to serve on")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to serve on (0.0.0.0: every interface of this machine)")
    add_trust_module(p)  # for --checkpoint


def run_play(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.games.connect_four.app import (
        SHIPPED_ONNX,
        ConnectFourPlay,
        build_app,
        load_onnx_agent,
        negamax_opponents,
    )

    # the cheap checks first: a mistyped path is reported before gradio (seconds to import) loads
    given = args.checkpoint or args.onnx
    if given is not None and not Path(given).exists():
        what = "checkpoint directory written by `rlarena train`" if args.checkpoint else ".onnx file written by " \
            "`rlarena export`"
        raise ConfigError(f"No such file or directory: {given}. Give the path of a {what}.")
    if given is None and not SHIPPED_ONNX.is_file():
        raise ConfigError(f"The shipped agent's model is missing ({SHIPPED_ONNX}); reinstall rlarena, "
                          f"or play another exported model with --onnx PATH.")
    # Gradio reports usage and checks for new versions over the network unless told not to
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401  # fail here with the extra to install, before exporting or loading a model
    except ModuleNotFoundError:
        raise ConfigError("`rlarena play` needs gradio: pip install 'rlarena[app]'") from None

    with tempfile.TemporaryDirectory(prefix="rlarena-play-") as tmp:
        if args.checkpoint is not None:
            name = f"agent ({Path(args.checkpoint).name})"
            model = export_checkpoint(args.checkpoint, Path(tmp), args.trusted_modules)
        elif args.onnx is not None:
            name, model = f"agent ({Path(args.onnx).name})", Path(args.onnx)
        else:
            name, model = "shipped agent", SHIPPED_ONNX
        play = ConnectFourPlay({name: load_onnx_agent(model), **negamax_opponents()}, default=name)
        from rlarena.games.connect_four.app import serve
        banner = (f"Connect Four against {name} ({model}) or negamax_1..7: open http://{args.host}:{args.port} "
                  f"(Ctrl+C to stop)")
        serve(build_app(play), host=args.host, port=args.port, banner=banner)
    return 0


def export_checkpoint(checkpoint: str, directory: Path, trusted_modules: list[str] | None = None) -> Path:
    """The checkpoint's "learned" policy as directory/model.onnx. Torch is imported for this step only;
    the page then plays the exported file with onnxruntime, as it plays the shipped agent."""
    from rlarena.algorithms import Algorithm
    from rlarena.cli.rollout import INFERENCE_OVERRIDES, resolve_checkpoint

    algo = Algorithm.from_checkpoint(resolve_checkpoint(checkpoint), config_overrides=dict(INFERENCE_OVERRIDES),
                                     trusted_modules=trusted_modules)
    try:
        return algo.export_onnx(directory / "model.onnx", "learned")
    finally:
        algo.stop()
