"""`rlarena train`: flags and/or an experiment file (-f) to rlarena.run. Flags given on the command
line win over the file; --config and --stop are merged into the file's config and stop, key by key.
--ray-address ADDR / --ray run the trials on Ray (rlarena.run's `ray`)."""

from __future__ import annotations

import argparse

from rlarena.algorithms.legacy import RENAMED
from rlarena.cli.spec import RUN_KEYS, confine_experiment, load_spec, make_config, parse_json
from rlarena.errors import ConfigError, notice
from rlarena.refs import Trust
from rlarena.train import run


def train(args: argparse.Namespace, explicit: set[str]) -> int:
    spec = load_spec(args.file) if args.file else {}
    algo = args.algo if "algo" in explicit or "algo" not in spec else str(spec["algo"])
    typed = parse_json(args.config, "--config", '{"lr": 0.0003}')
    env = args.env or spec.get("env")
    options = {**spec.get("config", {}), **typed}
    offline = options.get("input_", options.get("input", "sampler")) != "sampler"
    if env is None and "env" not in options and not offline:
        raise ConfigError(
            "No environment: pass --env (e.g. --env CartPole-v1; see `rlarena list envs`), an "
            "experiment file with -f, or logged data to learn from with --config "
            '\'{"input": "DIR"}\' (BC, MARWIL, CQL).'
        )
    if args.seed is not None:
        options["seed"] = args.seed
    if args.framework is not None:  # RLlib's --framework: the config's framework option (torch; others noted)
        options["framework"] = args.framework
    # an env the user typed may name a module to import; one read from the file only a trusted module
    from_file = not args.env and "env" not in typed
    trust = Trust.create(args.trusted_modules, source=f"experiment file {str(args.file)!r}") if from_file else None
    config, param_space = make_config(algo, env, options, trust)
    stop = {**spec.get("stop", {}), **parse_json(args.stop, "--stop", '{"episode_return_mean": 475}')}
    kwargs = {key: getattr(args, key) if key in explicit or key not in spec else spec[key] for key in RUN_KEYS}
    if args.file:  # the file is data: it chooses no path, cluster or process count, and its sizes are bounded
        source = f"Experiment file {str(args.file)!r}"
        if "storage_path" in spec and "storage_path" not in explicit:
            notice(
                f"{source} sets storage_path={spec['storage_path']!r}: a file does not choose where runs are "
                f"written, so they go to {args.storage_path!r}. Pass --storage-path to choose."
            )
            kwargs["storage_path"] = args.storage_path
        caller = {*typed, *(RENAMED.get(k, k) for k in typed), *(("seed",) if args.seed is not None else ())}
        param_space = confine_experiment(
            config,
            param_space,
            source,
            caller,
            kwargs["num_samples"],
            how="--config '{\"option\": value}' on the command line",
        )
    if not stop and args.verbose:
        print("No stop criterion: training until Ctrl-C (which writes a checkpoint first).")
    # --ray-address joins a cluster (its trial actors start their env runners there too); --ray: a local Ray
    ray = args.ray_address or args.ray or None
    bounded = f"Experiment file {str(args.file)!r}" if args.file and "model" not in typed else None
    results = run(
        config,
        stop=stop or None,
        param_space=param_space or None,
        resume=args.resume,
        verbose=args.verbose,
        tensorboard=args.tensorboard,
        plot=args.plot,
        trusted_modules=args.trusted_modules,
        ray=ray,
        source=bounded,
        **kwargs,
    )
    if results.interrupted:
        return 130
    if args.verbose and results.best_checkpoint:
        print(
            f"\nrun directory: {results.experiment_path}\n"
            f"  rlarena rollout {results.best_checkpoint} --episodes 5\n"
            f"  rlarena evaluate {results.best_checkpoint} --episodes 100\n"
            f"  rlarena plot {results.experiment_path}\n"
            f"  tensorboard --logdir {results.experiment_path}"
        )
    return 0
