"""The `rlarena` command: train, rollout, evaluate, plot, list.

Every user mistake (unknown algo, env, option or config key; malformed JSON or YAML; a missing or
corrupted checkpoint) ends here as one line `error: ...` on stderr and exit status 2, never a
traceback. Subcommands live in one table, COMMANDS; each adds its arguments and names its handler.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from rlarena._version import __version__
from rlarena.cli.export import add_export, run_export
from rlarena.cli.package import add_package, run_package
from rlarena.cli.play import add_play, run_play
from rlarena.cli.trust import add_trust_module
from rlarena.errors import RLArenaError, RLArenaNotice, TrainingError

Formatter = argparse.ArgumentDefaultsHelpFormatter


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 0")
    return value


# -- train ------------------------------------------------------------------------------------------
def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--file",
        metavar="YAML",
        default=None,
        help="experiment file with algo, env, config, stop (e.g. tuned_examples/ppo/cartpole.yaml)",
    )
    p.add_argument(
        "--algo",
        "--run",
        dest="algo",
        default="PPO",
        help="algorithm name (see `rlarena list algos`); --run is RLlib's name of the flag",
    )
    p.add_argument(
        "--env",
        default=None,
        help="Gymnasium id, register_env name, or module:EnvClassOrCreator (see `rlarena list envs`)",
    )
    p.add_argument(
        "--config",
        default="{}",
        metavar="JSON",
        help='config options by name, e.g. \'{"lr": 0.0003, "num_envs_per_env_runner": 8}\'; '
        '{"grid_search": [...]} values make a sweep',
    )
    p.add_argument(
        "--stop",
        default="{}",
        metavar="JSON",
        help="stop when any result key reaches its threshold, e.g. '{\"episode_return_mean\": 475}'",
    )
    p.add_argument(
        "--checkpoint-freq", type=_non_negative, default=0, metavar="N", help="checkpoint every N iterations (0: never)"
    )
    p.add_argument(
        "--checkpoint-at-end", action=argparse.BooleanOptionalAction, default=True, help="checkpoint when a trial stops"
    )
    p.add_argument(
        "--num-to-keep",
        "--keep-checkpoints-num",
        dest="num_to_keep",
        type=_positive,
        default=None,
        metavar="N",
        help="keep the best N checkpoints by --checkpoint-score-attribute (the N latest without it)",
    )
    p.add_argument(
        "--checkpoint-score-attribute",
        "--checkpoint-score-attr",
        dest="checkpoint_score_attribute",
        default=None,
        metavar="KEY",
        help="result key ranking checkpoints and trials (ranking defaults to episode_return_mean)",
    )
    p.add_argument("--checkpoint-score-order", choices=("max", "min"), default="max", help="higher or lower is better")
    p.add_argument(
        "--storage-path",
        "--local-dir",
        dest="storage_path",
        default="runs",
        metavar="DIR",
        help="directory holding the runs (--local-dir: RLlib's name)",
    )
    p.add_argument(
        "--framework",
        default=None,
        choices=("torch", "tf", "tf2", "tfe", "jax"),
        help="accepted for RLlib command lines: rlarena runs PyTorch (another value: a notice)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="run the trials in parallel on the Ray cluster at ADDR (host:port), one Ray actor per trial; "
        "'auto': the cluster running on this machine (`ray start --head`), or a local Ray on "
        "127.0.0.1 when none runs (RLlib's flag). Same run directory and files as without Ray",
    )
    p.add_argument(
        "--ray",
        action="store_true",
        help="run the trials in parallel on a new local Ray private to this run (127.0.0.1 only, "
        "this machine's CPUs; RAY_ADDRESS, when set, names a cluster to join instead)",
    )
    p.add_argument("--name", default=None, help="run directory under --storage-path; None: <algo>_<env>_<date>")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run --name (None: the latest of this algo and env) from its last checkpoint",
    )
    p.add_argument("--num-samples", type=_positive, default=1, metavar="N", help="trials per point of the search space")
    p.add_argument("--seed", type=int, default=None, metavar="N", help="config seed (same as --config '{\"seed\": N}')")
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0: silent, 1: a row per iteration, 2: also learner statistics and checkpoints",
    )
    p.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write TensorBoard event files (needs the tensorboard package)",
    )
    p.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write learning_curve.png when a trial ends (needs matplotlib)",
    )
    add_trust_module(p)  # for -f files that name module:Env, and checkpoints read by --resume


def run_train(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.cli.train import train

    return train(args, explicit)


# -- rollout / evaluate -----------------------------------------------------------------------------
def _add_checkpoint_args(p: argparse.ArgumentParser, episodes: int, optional: bool = False) -> None:
    p.add_argument(
        "checkpoint",
        help="checkpoint directory (or a trial directory: its latest checkpoint)",
        **({"nargs": "?", "default": None} if optional else {}),
    )
    p.add_argument("--episodes", type=_positive, default=episodes, help="number of episodes")
    p.add_argument("--explore", action="store_true", help="sample actions instead of the greedy (most likely) one")
    p.add_argument("--seed", type=int, default=None, help="seed of the first episode (None: random)")
    p.add_argument("--env", default=None, help="use this env instead of the checkpoint's (needed when it was a lambda)")
    add_trust_module(p)


def add_rollout(p: argparse.ArgumentParser) -> None:
    _add_checkpoint_args(p, episodes=5, optional=True)  # optional: --onnx plays without a checkpoint
    p.add_argument(
        "--onnx",
        metavar="PATH",
        default=None,
        help="play this exported model (`rlarena export`) with onnxruntime alone, instead of a checkpoint; needs --env",
    )
    p.add_argument(
        "--render",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show the episodes in a window (render_mode='human'; not with --video)",
    )
    p.add_argument(
        "--video", "--video-dir", dest="video", metavar="DIR", default=None, help="write one video per episode into DIR"
    )
    p.add_argument(
        "--video-format",
        choices=("auto", "gif", "mp4"),
        default="auto",
        help="auto: MP4 when imageio-ffmpeg is installed, else GIF (Pillow)",
    )
    p.add_argument(
        "--fps",
        type=_positive,
        default=None,
        help="video frames per second (None: the env's render_fps, e.g. CartPole 50, Connect Four 2)",
    )
    p.add_argument("--max-steps", type=_positive, default=None, help="cut episodes after this many steps")
    p.add_argument(
        "--steps",
        type=_positive,
        default=None,
        metavar="N",
        help="stop after N env steps in all (RLlib's rollout flag); alone, it plays as many episodes "
        "as fit, else it stops at whichever of --steps and --episodes comes first",
    )
    p.add_argument(
        "--run",
        default=None,
        metavar="ALGO",
        help="the checkpoint's algorithm, checked (RLlib's rollout flag; the checkpoint names it)",
    )
    p.add_argument(
        "--output",
        "--out",
        dest="output",
        metavar="DIR",
        default=None,
        help="record the episodes' steps as Parquet files in DIR (RLlib's offline format: obs, actions, "
        "rewards, new_obs, ...), to train BC, MARWIL or CQL on (needs pyarrow)",
    )


def run_rollout(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.cli.rollout import rollout

    if args.steps is not None and "episodes" not in explicit:
        args.episodes = None  # RLlib's `rollout --steps N`: episodes until N steps
    return rollout(args)


def add_evaluate(p: argparse.ArgumentParser) -> None:
    _add_checkpoint_args(p, episodes=100)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a sentence")


def run_evaluate(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.cli.rollout import evaluate

    return evaluate(args)


# -- arena ----------------------------------------------------------------------------------------
def add_arena(p: argparse.ArgumentParser) -> None:
    shipped = str(Path(__file__).resolve().parent.parent / "games" / "connect_four" / "agent")
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=shipped,
        help="a Connect Four checkpoint directory; the default is the agent shipped with rlarena",
    )
    p.add_argument(
        "--policy-id",
        default=None,
        help="the checkpoint's policy to play (None: 'learned', or the checkpoint's only policy)",
    )
    p.add_argument(
        "--search",
        type=int,
        default=None,
        metavar="N",
        help="play an AlphaZero checkpoint's search agent, MCTS with N simulations per move over its "
        "network, instead of the network's greedy move (matches and solver grades)",
    )
    p.add_argument(
        "--games",
        type=int,
        default=49,
        help="games per seat against each opponent; a seat's game i starts from opening i "
        "mod the number of openings (evenly spaced ones when there are fewer games), so both seats "
        "play the same openings and the default plays each two-ply opening once per seat",
    )
    p.add_argument(
        "--openings",
        default="two_ply",
        metavar="SPEC",
        help="where games start: 'two_ply' (the 49 two-ply openings), 'random:A-B' (one "
        "distinct balanced opening of A to B random plies per game of a seat, e.g. random:2-6; "
        "random:4 for exactly 4) or 'empty' (every game from the empty board: the old evaluation, "
        "which a deterministic agent can memorize)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the opponents' random tie-breaks and the random openings")
    p.add_argument(
        "--opponents",
        nargs="+",
        metavar="NAME",
        help="opponents to play",
        default=["random", "always_same", "linear", "beat_last", "smart"]
        + [f"negamax_{depth}" for depth in range(1, 8)],
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument(
        "--grade",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also grade the agent's moves on the solver-labelled test positions (end, middle "
        "and opening stages: outcome kept, optimal move). Unset (None): on for the text output, off for "
        '--json; given with --json, the JSON is {"matches": table, "grades": grades}',
    )
    add_trust_module(p)


def run_arena(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.cli.arena import arena

    return arena(args)


# -- plot / list ------------------------------------------------------------------------------------
def add_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (runs/<name>) or one trial directory in it")
    p.add_argument(
        "--y",
        nargs="+",
        default=None,
        metavar="KEY",
        help="result keys to plot (None: episode_return_mean and evaluation/episode_return_mean)",
    )
    p.add_argument("--x", default="num_env_steps_sampled_lifetime", metavar="KEY", help="result key on the x axis")


def run_plot(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.train.plot import plot_run

    for path in plot_run(args.run_dir, args.y, args.x):
        print(path)
    return 0


def add_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("algos", "envs"), help="what to list")


def run_list(args: argparse.Namespace, explicit: set[str]) -> int:
    if args.what == "algos":
        from rlarena.algorithms import ALGORITHMS

        names = list(ALGORITHMS)
    else:
        from rlarena.envs.registry import registered_envs

        names = registered_envs()
    print("\n".join(names))
    return 0


Handler = Callable[[argparse.Namespace, set[str]], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "train": ("train an agent (flags or an experiment file)", add_train, run_train),
    "rollout": ("play episodes with a checkpoint: per-episode return, mean, optional video", add_rollout, run_rollout),
    "evaluate": ("evaluate a checkpoint: return mean ± std, min, max", add_evaluate, run_evaluate),
    "export": (
        "export a checkpoint's policy as an ONNX model (onnxruntime plays it without torch)",
        add_export,
        run_export,
    ),
    "arena": ("play a Connect Four agent against each opponent: a win/draw/loss table", add_arena, run_arena),
    "play": ("serve a page to play Connect Four against an agent in the browser", add_play, run_play),
    "plot": ("write learning-curve PNGs from a run's progress.csv", add_plot, run_plot),
    "package": (
        "evaluate a checkpoint, record a replay, write a Hugging Face Hub model folder; --push uploads it",
        add_package,
        run_package,
    ),
    "list": ("list algorithms or environments", add_list, run_list),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="rlarena", description="Fast, lean reinforcement learning.", formatter_class=Formatter, allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"rlarena {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = {}
    for name, (summary, add, _) in COMMANDS.items():
        parsers[name] = sub.add_parser(
            name, help=summary, description=summary, formatter_class=Formatter, allow_abbrev=False
        )
        add(parsers[name])
    return parser, parsers


def _explicit(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The dests of the options typed on the command line (to let them win over an experiment file)."""
    given = set()
    for action in parser._actions:
        for opt in action.option_strings:
            if any(tok == opt or tok.startswith(opt + "=") for tok in argv):
                given.add(action.dest)
    return given


def _notices_as_lines(show: Callable[..., None]) -> Callable[..., None]:
    """A warnings.showwarning that prints each RLArenaNotice as one line `notice: ...` (not a file path
    and source line) and hands every other warning to `show`."""

    def show_notice(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, RLArenaNotice):
            print(f"notice: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, filename, lineno, file, line)

    return show_notice


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, parsers = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = COMMANDS[args.command][2]
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _notices_as_lines(warnings.showwarning)
            return handler(args, _explicit(parsers[args.command], argv))
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RLArenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rlarena list envs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
