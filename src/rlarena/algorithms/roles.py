"""The table of what every option decides when a file sets it (config.ROLES), for the docs.

`python scripts/write_option_roles.py` writes it into docs/files-from-others.md; a test checks that
the page matches, so the table cannot drift from the configs.
"""

from __future__ import annotations

from rlarena import limits
from rlarena.algorithms import ALGORITHMS

# options that name code: resolved only as trusted (rlarena.refs), whatever their role
CODE_OPTIONS = ("env", "callbacks_class", "policy_mapping_fn", "policies")
# options whose role needs a word more in the table
NOTES = {
    "model": ("computes; its networks are how big", "MAX_PARAMETERS"),
    "env_config": ("computes (the env checks its own sizes: rlarena's envs against rlarena.limits)", None),
    "sample_async": ("computes (one sampling process; more only by the caller's num_sampling_processes)", None),
}
# sizes inside options and the experiment file's own keys, beside the config fields
EXTRA_ROWS = [
    ("replay_buffer_config.capacity", "how big", "MAX_REPLAY", "transitions or positions kept"),
    ("mcts_config.num_simulations", "how big", "MAX_SIMULATIONS", "search simulations per move (AlphaZero)"),
    ("env_config.max_episode_steps", "how big", "MAX_EPISODE_STEPS", "a Gymnasium env's time limit"),
    ("storage_path (experiment file)", "where", None, "where runs are written: --storage-path"),
    ("num_samples (experiment file)", "how big", "MAX_SAMPLES", "trials: grid points times samples"),
]


def roles_table() -> str:
    """A markdown table: option, role, bound (name and value), the algorithms that have it."""
    seen: dict[str, tuple[str, str | None, list[str]]] = {}
    for name, algo in ALGORITHMS.items():
        for option, (role, bound) in algo.config_class.option_roles().items():
            previous = seen.setdefault(option, (role, bound, []))
            if previous[:2] != (role, bound):
                raise AssertionError(f"{option} has role {previous[:2]} in one config and {(role, bound)} in {name}")
            previous[2].append(name)
    rows = ["| option | role | bound (rlarena.limits) | algorithms |", "|---|---|---|---|"]
    for option in sorted(seen):
        role, bound, names = seen[option]
        if option in CODE_OPTIONS:
            role = f"{role} (names code: trusted only)"
        role, bound = NOTES.get(option, (role, bound))
        where = "all" if len(names) == len(ALGORITHMS) else ", ".join(names)
        rows.append(f"| `{option}` | {role} | {_bound(bound)} | {where} |")
    for option, role, bound, what in EXTRA_ROWS:
        rows.append(f"| `{option}` | {role} | {_bound(bound)} | {what} |")
    return "\n".join(rows) + "\n"


def _bound(name: str | None) -> str:
    return "" if name is None else f"`{name}` = {limits.limit(name):,}"
