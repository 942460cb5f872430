"""`rlarena package CHECKPOINT --out DIR [--repo-id user/name] [--push]`: evaluate, record a replay,
write a Hub model card and the weights (rlarena.hub.package_to_hub), and upload when asked."""

from __future__ import annotations

import argparse
import sys
import warnings

from rlarena.cli.trust import add_trust_module


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 1")
    return value


def add_package(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint directory (or a trial directory: its latest checkpoint)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the package folder to write (an existing package there is replaced once the new one is "
        "complete; any other non-empty folder is refused)",
    )
    p.add_argument(
        "--repo-id",
        default=None,
        metavar="USER/NAME",
        help="the Hub repository (named in the model card's usage snippet; where --push uploads)",
    )
    p.add_argument(
        "--push",
        action="store_true",
        help="upload the folder to --repo-id with huggingface_hub (token: HF_TOKEN or `hf auth login`)",
    )
    p.add_argument("--private", action="store_true", help="create the Hub repository as private (with --push)")
    p.add_argument("--episodes", type=_positive, default=10, help="greedy evaluation episodes")
    p.add_argument("--seed", type=int, default=0, help="env seed of the first evaluation episode (then +1 each)")
    p.add_argument(
        "--policy-id",
        default=None,
        help="multi-agent: the policy to package (None: the checkpoint's one trained policy)",
    )
    p.add_argument(
        "--opponent",
        default=None,
        metavar="POLICY_ID",
        help="multi-agent: the checkpoint policy playing the other seats (seats alternate); "
        "None: the checkpoint's policy mapping",
    )
    p.add_argument(
        "--video",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="record a replay video of the first evaluation episode (--no-video: none)",
    )
    p.add_argument(
        "--video-format",
        choices=("auto", "gif", "mp4"),
        default="auto",
        help="auto: MP4 when imageio-ffmpeg is installed, else GIF (Pillow)",
    )
    p.add_argument(
        "--fps", type=_positive, default=None, help="replay frames per second (None: the env's render_fps, else 30)"
    )
    p.add_argument("--env", default=None, help="use this env instead of the checkpoint's (needed when it was a lambda)")
    add_trust_module(p)


def run_package(args: argparse.Namespace, explicit: set[str]) -> int:
    from rlarena.cli.rollout import resolve_checkpoint
    from rlarena.cli.spec import resolve_env
    from rlarena.hub import package_to_hub

    env = resolve_env(args.env) if args.env else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = package_to_hub(
            resolve_checkpoint(args.checkpoint),
            args.out,
            repo_id=args.repo_id,
            push=args.push,
            episodes=args.episodes,
            seed=args.seed,
            policy_id=args.policy_id,
            opponent=args.opponent,
            video=args.video,
            video_format=args.video_format,
            fps=args.fps,
            env=env,
            private=args.private or None,
            trusted_modules=args.trusted_modules,
        )
    for warning in caught:  # e.g. no replay for an env without rgb_array frames: one line each
        if issubclass(warning.category, UserWarning) and "rlarena" in warning.filename:
            print(f"warning: {warning.message}", file=sys.stderr)
    r = result.results
    print(
        f"{r['algorithm']} on {r['env']}, {r['episodes']} greedy episodes: "
        f"return {r['mean_reward']:.2f} ± {r['std_reward']:.2f}"
    )
    print(f"package: {result.folder}" + (f" (replay {result.video.name})" if result.video else " (no replay)"))
    if result.url:
        print(f"pushed: {result.url}")
    elif args.repo_id:
        print(f"push it with: rlarena package {args.checkpoint} --out {args.out} --repo-id {args.repo_id} --push")
    return 0
