"""Play Connect Four against an rlarena agent in the browser (`rlarena play connect4`).

Two halves, so the game logic is testable without a browser:
- `ConnectFourPlay` and `GameSession`: the opponents a page offers and one game against one of them
  (plain numpy on rlarena's rules, no gradio, no torch). A session is plain data, one per browser
  session; the policies are built once per process and shared by every session.
- `build_app` / `serve`: the Gradio page. gradio is imported inside them only, so importing this module
  costs nothing when no page is served.
- `PageGate`: what the server lets in. The page needs no files and sends a few hundred bytes of JSON,
  so every request that is not the page's own is refused before its body is read (`PageGate`'s
  docstring has the rules).

Opponents are rlarena Policies called as `compute_actions({"observation": int8 [1, 6, 7, 2],
"action_mask": int8 [1, 7]}, explore=False)`, each under a stable key and a name people read:
- "network": the agent's network alone (its greedy move), an ONNX model served by onnxruntime;
- "search_N": the search agent, MCTS with N simulations over the same network (rlarena.games.mcts,
  numpy; still no torch), offered only for a network trained as AlphaZero's, whose value output
  means tanh(value) = the expected result (`search_levels`);
- "negamax_1".."negamax_7": alpha-beta negamax looking 1..7 plies ahead.
Seats follow connect_four_v3: player_0 moves first and plays red, player_1 plays yellow; the human
takes whichever seat "who starts" gives them.
"""

from __future__ import annotations

import html
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import gymnasium as gym
import numpy as np

from rlarena.errors import ConfigError, closest
from rlarena.games.connect_four.rules import COLS, ROWS, Game, observation_space
from rlarena.policies.policy import ExportOutputs, Policy, policy_actions

SHIPPED_ONNX = Path(__file__).resolve().parent / "agent" / "model.onnx"
NEGAMAX_LEVELS = tuple(f"negamax_{depth}" for depth in range(1, 8))
# The search levels' simulations per move. Measured one move at a time with the shipped network on
# this project's 2-core machine, 8 leaves per network call (benchmarks/README.md): 8000 take 0.66 s
# (max 0.78 s) per move, so the strongest stays under a second a move.
SEARCH_LEVELS = (50, 200, 800, 8000)
SEARCH_ALGORITHMS = ("AlphaZero",)  # algorithms whose value head the search can use (tanh(value) in [-1, 1])
COLOURS = ("red", "yellow")  # by seat, as rlarena.games.connect_four.rules.render_rgb draws them
Result = Literal["win", "loss", "draw"]  # from the human's side


@dataclass
class GameSession:
    """One browser session's game. Plain data: gr.State keeps one per session."""

    opponent: str  # a key of ConnectFourPlay.opponents
    human_seat: int  # 0: the human moves first (red); 1: the agent does and the human plays yellow
    name: str = ""  # the opponent as the page names it (ConnectFourPlay.label)
    game: Game = field(default_factory=Game)  # game.board: int8 [6, 7], 0 empty, 1 red, 2 yellow, row 0 on top
    last: tuple[int, int] | None = None  # (row, col) of the latest piece, highlighted on the page
    line: list[tuple[int, int]] = field(default_factory=list)  # the cells of the winning four, once won
    result: Result | None = None
    message: str = ""  # what the page's status line says

    def __post_init__(self) -> None:
        self.name = self.name or self.opponent

    @property
    def agent_seat(self) -> int:
        return 1 - self.human_seat

    def legal_columns(self) -> list[int]:
        return [] if self.result is not None else [c for c in range(COLS) if self.game.legal(c)]


class ConnectFourPlay:
    """The opponents one page offers, by key, and the moves of a game against them.

    `opponents` maps a key ("network", "search_800", "negamax_3", ...) to a Policy; `labels` maps a
    key to the name the page and its messages show ("search, 800 simulations"; the key itself when
    absent); `default` is the key a new page starts against (the first when None).
    """

    def __init__(
        self, opponents: Mapping[str, Policy], default: str | None = None, labels: Mapping[str, str] | None = None
    ):
        if not opponents:
            raise ConfigError("ConnectFourPlay needs at least one opponent.")
        self.policies = dict(opponents)
        self.labels = {key: (labels or {}).get(key, key) for key in self.policies}
        self.default = next(iter(self.policies)) if default is None else default
        self._check(self.default)
        # Gradio runs handlers on a thread pool; a policy's own state (the heuristics' and the search's
        # random generators) is not thread-safe, and a move takes well under a second (a page serves a
        # few players, not a crowd), so one lock is enough
        self._lock = threading.Lock()

    @property
    def opponents(self) -> list[str]:
        return list(self.policies)

    def label(self, opponent: str) -> str:
        return self.labels.get(opponent, opponent)

    def _check(self, opponent: str) -> None:
        if opponent not in self.policies:
            raise ConfigError(
                f"Unknown opponent {opponent!r}.{closest(opponent, self.policies)} "
                f"Opponents: {', '.join(self.policies)}."
            )

    def new_game(self, opponent: str | None = None, human_first: bool = True) -> GameSession:
        opponent = self.default if opponent is None else opponent
        self._check(opponent)
        session = GameSession(opponent=opponent, human_seat=0 if human_first else 1, name=self.label(opponent))
        you, name = f"You play {COLOURS[session.human_seat]}", session.name
        if human_first:
            session.message = f"New game against {name}. {you} and move first: click a column."
        else:
            col, legal = self._agent_move(session)
            session.message = (
                f"New game against {name}. {name} ({COLOURS[0]}) opened in column {col + 1}. {you}: your move."
                if legal
                else f"New game against {name}. {self._forfeit(session, col)}"
            )
        return session

    def play(self, session: GameSession, column: int) -> GameSession:
        """The human drops a piece in `column` (0-based) and the agent answers; an illegal move leaves
        the board as it was and says why in `session.message`. Returns the same session."""
        if session.result is not None:
            session.message = f"The game is over: {self._outcome(session)} Press New game to play again."
            return session
        if not 0 <= column < COLS:
            session.message = f"There is no column {column + 1}: choose a column from 1 to {COLS}."
            return session
        if not session.game.legal(column):
            session.message = f"Column {column + 1} is full: choose another column."
            return session
        self._drop(session, column, session.human_seat)
        if session.result is not None:
            session.message = f"You played column {column + 1}. {self._outcome(session)} Press New game to play again."
            return session
        answer, legal = self._agent_move(session)
        said = f"You played column {column + 1}, {session.name} answered column {answer + 1}."
        if not legal:
            session.message = f"You played column {column + 1}. {self._forfeit(session, answer)}"
        elif session.result is None:
            session.message = f"{said} Your move."
        else:
            session.message = f"{said} {self._outcome(session)} Press New game to play again."
        return session

    def _agent_move(self, session: GameSession) -> tuple[int, bool]:
        """The agent's column and whether it was legal; an illegal one ends the game."""
        seat = session.agent_seat
        obs = {"observation": session.game.planes(seat)[None], "action_mask": session.game.legal_mask()[None]}
        with self._lock:
            column = int(policy_actions(self.policies[session.opponent], obs, False, 1)[0])
        if not 0 <= column < COLS or not session.game.legal(column):
            # connect_four_v3's rule for an illegal move: the mover loses. Only a broken model gets here.
            session.result = "win"
            return column, False
        self._drop(session, column, seat)
        return column, True

    @staticmethod
    def _forfeit(session: GameSession, column: int) -> str:
        return (
            f"{session.name} chose column {column + 1}, which cannot be played: it forfeits. You win! "
            f"Press New game to play again."
        )

    @staticmethod
    def _drop(session: GameSession, column: int, seat: int) -> None:
        game = session.game
        row = ROWS - 1 - game.heights[column]
        won = game.play(column, seat)
        session.last = (row, column)
        if won:
            session.result = "win" if seat == session.human_seat else "loss"
            session.line = winning_line(game.board, row, column)
        elif game.full():
            session.result = "draw"

    @staticmethod
    def _outcome(session: GameSession) -> str:
        if session.result == "win":
            return "You win!"
        if session.result == "loss":
            return f"You lose: {session.name} wins."
        return "Draw: the board is full."


def winning_line(board: np.ndarray, row: int, col: int) -> list[tuple[int, int]]:
    """The cells in a row of four or more through (row, col) of the same colour, or [] when none."""
    colour = board[row, col]
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        cells = [(row, col)]
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < ROWS and 0 <= c < COLS and board[r, c] == colour:
                cells.append((r, c))
                r, c = r + sign * dr, c + sign * dc
        if len(cells) >= 4:
            return sorted(cells)
    return []


# -- opponents ------------------------------------------------------------------------------------------
def negamax_opponents(levels: tuple[str, ...] = NEGAMAX_LEVELS) -> dict[str, Policy]:
    from rlarena.games.connect_four.opponents import OPPONENTS

    return {name: OPPONENTS[name](observation_space(), gym.spaces.Discrete(COLS)) for name in levels}


def opponent_label(key: str) -> str:
    """The name the page shows for an opponent key: "network", "search_800", "negamax_3"."""
    if key == "network":
        return "network alone (no search)"
    if key.startswith("search_"):
        return f"search, {int(key.removeprefix('search_'))} simulations"
    if key.startswith("negamax_"):
        return f"negamax, depth {int(key.removeprefix('negamax_'))}"
    return key


def checkpoint_algorithm(directory: str | Path) -> str | None:
    """The "algorithm" a checkpoint directory's rlarena_checkpoint.json names (None when it has none:
    e.g. an .onnx file exported elsewhere). Reads the JSON only: no torch."""
    from rlarena.checkpoint.io import read_json

    path = Path(directory) / "rlarena_checkpoint.json"
    if not path.is_file():
        return None
    meta = read_json(path, "Checkpoint metadata")
    algorithm = meta.get("algorithm") if isinstance(meta, dict) else None
    return algorithm if isinstance(algorithm, str) else None


def search_levels(algorithm: str | None, asked: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The search levels to offer: `asked` when given (the command's --search), else SEARCH_LEVELS for
    a network trained by an algorithm of SEARCH_ALGORITHMS and none for another (a PPO value head
    estimates discounted returns, not a result in [-1, 1]: a search over it would be misled)."""
    if asked is not None:
        return asked
    return SEARCH_LEVELS if algorithm in SEARCH_ALGORITHMS else ()


def agent_opponents(model: str | Path, search: tuple[int, ...] = ()) -> dict[str, Policy]:
    """The exported agent's levels: "network" (the model alone, greedy) and "search_N" for each N in
    `search` (MCTS with N simulations per move over the same onnxruntime session; numpy, no torch)."""
    network = load_onnx_agent(model)
    levels: dict[str, Policy] = {"network": network}
    if search:
        from rlarena.games.connect_four.game import ConnectFourGame
        from rlarena.games.mcts import SERVE_LEAVES_PER_CALL, SearchPolicy, outputs_evaluator

        if not isinstance(network, ExportOutputs):
            raise ConfigError(f"Search levels read the network's raw outputs; {type(network).__name__} gives none.")
        evaluator = outputs_evaluator(network.compute_outputs)
        for n in search:
            if n < 1:
                raise ConfigError(f"A search level is a number of simulations per move, at least 1; got {n}.")
            # no seed: ties among equally visited moves break differently from game to game
            levels[f"search_{n}"] = SearchPolicy(
                ConnectFourGame(),
                evaluator,
                n,
                observation_space=network.observation_space,
                action_space=network.action_space,
                leaves_per_call=SERVE_LEAVES_PER_CALL,
            )
    return levels


def page_opponents(model: str | Path, search: tuple[int, ...] = ()) -> ConnectFourPlay:
    """What `rlarena play connect4` serves: the agent's levels (agent_opponents), then negamax 1..7;
    a new page starts against the strongest search level, or the network when there is none."""
    opponents = {**agent_opponents(model, search), **negamax_opponents()}
    default = f"search_{max(search)}" if search else "network"
    return ConnectFourPlay(opponents, default=default, labels={key: opponent_label(key) for key in opponents})


def load_onnx_agent(path: str | Path) -> Policy:
    """An exported agent served by onnxruntime alone (no torch)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No ONNX model at {path}: give the path of a .onnx file written by `rlarena export`.")
    try:
        import onnxruntime  # noqa: F401  # checked here to name the missing extra, not deep inside the export module
    except ModuleNotFoundError:
        raise ConfigError("Serving an ONNX agent needs onnxruntime: pip install 'rlarena[app]'") from None
    from rlarena.export.onnx import OnnxPolicy

    agent = OnnxPolicy(path)
    # checked at start-up, so a model for another game fails here with its name, not on the first move
    obs, act = agent.observation_space, agent.action_space
    inner = obs["observation"] if isinstance(obs, gym.spaces.Dict) and "observation" in obs.spaces else obs
    if not agent.masked or inner.shape != (ROWS, COLS, 2) or act != gym.spaces.Discrete(COLS):
        raise ConfigError(
            f"{path} is not a Connect Four policy: it takes {inner} and plays {act} (exported from "
            f"{agent.env_name or 'an unnamed env'}); Connect Four needs a masked policy over "
            f"(6, 7, 2) boards playing Discrete(7)."
        )
    return agent


# -- the page ---------------------------------------------------------------------------------------------
CSS = """
#c4-board .c4-grid { display: grid; grid-template-columns: repeat(7, 1fr); gap: 6px; padding: 10px;
  background: #1e50c8; border-radius: 12px; max-width: 490px; margin: 0 auto; }
#c4-board .c4-cell { aspect-ratio: 1; border-radius: 50%; background: #f5f5f5; cursor: pointer;
  box-shadow: inset 0 3px 6px rgba(0, 0, 0, 0.35); }
#c4-board .c4-red { background: #dc2828; }
#c4-board .c4-yellow { background: #f0c81e; }
#c4-board .c4-last { outline: 4px solid #ffffff; outline-offset: -4px; }
#c4-board .c4-line { outline: 5px solid #22c55e; outline-offset: -5px; }
#c4-board .c4-over .c4-cell { cursor: default; }
#c4-board .c4-legend { text-align: center; margin-top: 6px; }
#c4-columns { max-width: 490px; margin: 0 auto; gap: 6px; }
#c4-columns button { min-width: 0; }
#c4-status { text-align: center; font-size: 1.15em; min-height: 2.5em; }
"""

# A click on a cell of the board presses that column's button, so both routes run the same handler.
BOARD_JS = """
element.addEventListener('click', (event) => {
  const cell = event.target.closest('[data-col]');
  const button = cell && document.getElementById('c4-col-' + cell.dataset.col);
  if (button) button.click();
});
"""


def board_html(session: GameSession | None) -> str:
    """The board as a grid of cells, with data attributes a test (or a screen reader) can read."""
    board = np.zeros((ROWS, COLS), np.int8) if session is None else session.game.board
    line = set() if session is None else set(session.line)
    cells = []
    for r in range(ROWS):
        for c in range(COLS):
            v = int(board[r, c])
            classes = ["c4-cell", ("c4-empty", "c4-red", "c4-yellow")[v]]
            if session is not None and session.last == (r, c):
                classes.append("c4-last")
            if (r, c) in line:
                classes.append("c4-line")
            label = ("empty", "red", "yellow")[v]
            cells.append(
                f'<div class="{" ".join(classes)}" data-row="{r}" data-col="{c}" data-piece="{v}" '
                f'title="column {c + 1}" aria-label="row {ROWS - r}, column {c + 1}: {label}"></div>'
            )
    if session is None:
        legend, result, moves = "", "", 0
    else:
        you, agent = COLOURS[session.human_seat], COLOURS[session.agent_seat]
        legend = f"You: {you} &middot; {html.escape(session.name)}: {agent}"
        result, moves = session.result or "", session.game.moves
    over = " c4-over" if result else ""
    return (
        f'<div class="c4-grid{over}" role="grid" aria-label="Connect Four board" data-moves="{moves}" '
        f'data-result="{result}">{"".join(cells)}</div><div class="c4-legend">{legend}</div>'
    )


def status_html(session: GameSession | None) -> str:
    """The status line; bold once the game has a result."""
    if session is None:
        return "<p>Loading a new game...</p>"
    text = html.escape(session.message)
    return f"<p><strong>{text}</strong></p>" if session.result else f"<p>{text}</p>"


def levels_markdown(play: ConnectFourPlay) -> str:
    """One line per kind of opponent the page offers, weakest first within each kind."""
    keys = play.opponents
    lines = []
    if "network" in keys:
        lines.append("- **network alone**: the trained network's own move, no lookahead.")
    searches = [k for k in keys if k.startswith("search_")]
    if searches:
        counts = ", ".join(k.removeprefix("search_") for k in searches)
        lines.append(
            f"- **search** ({counts} simulations): the same network looking ahead by Monte Carlo tree "
            f"search; more simulations play stronger and think longer."
        )
    if any(k.startswith("negamax_") for k in keys):
        lines.append("- **negamax, depth d**: a classic alpha-beta player that looks d moves ahead.")
    return "\n".join(lines)


def build_app(play: ConnectFourPlay, title: str = "rlarena: Connect Four") -> Any:
    """The Gradio Blocks page over `play`. Each browser session keeps its own GameSession in a gr.State
    (created when the page loads), so concurrent players never share a board."""
    import gradio as gr

    def show(session: GameSession) -> tuple[GameSession, str, str]:
        return session, board_html(session), status_html(session)

    def start(first: str, opponent: str) -> tuple[GameSession, str, str]:
        return show(play.new_game(opponent, human_first=first != "Agent"))

    def mover(column: int):
        def move(session: GameSession | None) -> tuple[GameSession, str, str]:
            # None only if a click beats the page's load event: start a default game first
            return show(play.play(session or play.new_game(), column))

        return move

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(
            "## Connect Four against an rlarena agent\nFour in a row wins. Click a column (or its "
            "number) to drop a piece; the agent answers at once.\n\n" + levels_markdown(play)
        )
        with gr.Row():
            first = gr.Radio(["You", "Agent"], value="You", label="Who starts", elem_id="c4-first")
            # (label, key) pairs: the page shows the label, the handlers get the stable key
            opponent = gr.Radio(
                [(play.label(key), key) for key in play.opponents],
                value=play.default,
                label="Opponent",
                elem_id="c4-opponent",
            )
        new = gr.Button("New game", variant="primary", elem_id="c4-new")
        status = gr.HTML(status_html(None), elem_id="c4-status", js_on_load=None)
        with gr.Row(elem_id="c4-columns", equal_height=True):
            buttons = [gr.Button(str(c + 1), elem_id=f"c4-col-{c}", size="sm", min_width=0) for c in range(COLS)]
        board = gr.HTML(board_html(None), elem_id="c4-board", js_on_load=BOARD_JS)
        state = gr.State()

        outputs = [state, board, status]
        # show_progress="hidden": a move takes well under a second (the strongest search level about
        # a third of one); a loading overlay would only flicker
        demo.load(start, [first, opponent], outputs, show_progress="hidden", api_name="start")
        new.click(start, [first, opponent], outputs, show_progress="hidden", api_name="new_game")
        for column, button in enumerate(buttons):
            button.click(mover(column), [state], outputs, show_progress="hidden", api_name=f"play_column_{column + 1}")
    return demo


# -- what the server lets in ------------------------------------------------------------------------------
# A page served on 127.0.0.1 is still reachable from every web page the user's browser opens: another
# site may POST a form to it (browsers send simple cross-origin posts without asking), or rebind a DNS
# name of its own to 127.0.0.1 so that its scripts look same-origin to the browser (only the Host header
# then tells the request apart). Gradio's own CORS middleware only decides which responses a script
# may read; the request still runs. So the gate refuses, in front of every route Gradio has or adds.
MAX_BODY_BYTES = 64 * 1024  # the page's own calls (start, a move, a new game) send under 1 KB of JSON
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # methods that change nothing (RFC 9110, 9.2.1)
# Gradio's routes that write files (gradio/routes.py: POST /gradio_api/upload, /gradio_api/process_recording),
# refused by their last path segment whatever the prefix
UPLOAD_ROUTES = frozenset({"upload", "process_recording"})
# bodies that carry files or HTML forms; the page's own calls are JSON
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

Refusal = tuple[int, str]  # (HTTP status, one line for people)
Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only: localhost or a loopback address (127.x, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _host_port(authority: str, scheme: str) -> tuple[str, int] | None:
    """("localhost", 7860) from "localhost:7860" (IPv6 in brackets; the scheme's port when none is
    written), or None when it does not parse."""
    try:
        split = urlsplit(f"//{authority}")
        port = split.port
    except ValueError:
        return None
    if not split.hostname or split.username is not None or split.path or split.query or split.fragment:
        return None
    return split.hostname, DEFAULT_PORTS.get(scheme, 80) if port is None else port


def _origin(url: str) -> tuple[str, int] | None:
    """The (host, port) of an Origin or Referer header's URL; None for "null" or anything but http(s)."""
    try:
        split = urlsplit(url)
    except ValueError:
        return None
    if split.scheme not in ("http", "https"):
        return None
    return _host_port(split.netloc, split.scheme)


class PageGate:
    """ASGI middleware that lets through only the requests the Connect Four page makes.

    - Host must name this server (against DNS rebinding). Served on a loopback address: localhost,
      127.0.0.1, [::1] or the address served on. Served on another address or every interface
      (0.0.0.0): an IP address, localhost, this machine's name or the name served on; a rebound name
      is none of these (its page would have to come from this server to carry an IP address as its
      origin). Any port: an SSH tunnel or a forwarded port changes the port, never the name.
    - No other site: an Origin header, on any request, must be this server's own origin (the Host it
      was asked for, port included); a state-changing request without one must not carry another
      site's Referer. Clients that send neither (curl, gradio_client) are not browsers a site can drive.
    - No uploads: Gradio's upload routes and multipart or form bodies are refused (the page has no
      file component), so nothing is written to Gradio's upload directory.
    - Bounded bodies: a Content-Length of at most `max_body` bytes; a body of unknown length (chunked)
      is refused.
    A refused request gets its status and one line of text, its body unread, and the connection closes.
    """

    def __init__(self, app: ASGIApp, host: str, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body
        bound = host.strip("[]").lower()
        self.loopback = is_loopback(bound)
        if self.loopback:
            self.names = LOOPBACK_NAMES | {bound}
        else:
            machine = socket.gethostname().lower()
            self.names = frozenset({"localhost", machine, f"{machine}.local"} | ({bound} - WILDCARD_HOSTS))

    def allows_name(self, name: str) -> bool:
        name = name.lower()
        return name in self.names or (not self.loopback and _is_ip(name))

    def check(self, scope: Scope) -> Refusal | None:
        """None when the request may go on, else (status, reason)."""
        headers: dict[str, list[str]] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        for key in ("host", "origin", "referer", "content-length", "content-type"):
            if len(headers.get(key, ())) > 1:
                return 400, f"Bad request: more than one {key} header."
        one = {key: values[0].strip() for key, values in headers.items() if values}

        scheme = scope.get("scheme", "http")
        served = _host_port(one.get("host", ""), scheme)
        if served is None or not self.allows_name(served[0]):
            what = "has no Host header" if "host" not in one else f"asks for host {one['host']!r}"
            where = "localhost, 127.0.0.1 or [::1]" if self.loopback else "this machine's IP addresses or name"
            return 421, f"Misdirected request: it {what}; this page answers to {where} only."

        method = scope.get("method", "GET").upper()  # websockets have no method: a GET upgrade
        if "origin" in one:
            if _origin(one["origin"]) != served:
                return 403, f"Cross-site request refused: a page from {one['origin']} cannot use this page."
        elif method not in SAFE_METHODS and "referer" in one and _origin(one["referer"]) != served:
            return 403, "Cross-site request refused: it was sent from another site's page."

        if scope["path"].rstrip("/").rsplit("/", 1)[-1] in UPLOAD_ROUTES:
            return 403, "This page takes no file uploads."
        if one.get("content-type", "").split(";")[0].strip().lower() in FORM_TYPES:
            return 415, "This page takes JSON requests, not forms or files."
        if "transfer-encoding" in headers:
            return 411, "A request body needs a Content-Length; bodies of unknown length are refused."
        length = one.get("content-length", "0")
        if not (length.isascii() and length.isdigit()):
            return 400, f"Bad request: Content-Length {length!r} is not a number of bytes."
        if int(length) > self.max_body:
            return 413, f"Request body too large: {int(length)} bytes; this page takes at most {self.max_body}."
        return None

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]
    ) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: the server answers 403
        else:
            status, reason = refusal
            body = f"{reason}\n".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"x-content-type-options", b"nosniff"),  # the reason quotes a header
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def exposure_notice(host: str, port: int) -> str:
    """What a person serving beyond this machine should know; "" for a loopback address."""
    if is_loopback(host):
        return ""
    where = "every interface of this machine" if host.strip("[]") in WILDCARD_HOSTS else host
    return (
        f"Serving on {where}: anyone who can reach port {port} here can play and call the page's API "
        f"(no login). The page answers to this machine's IP addresses and name and to localhost, "
        f"refuses requests from other sites' pages and all uploads."
    )


def page_url(host: str, port: int) -> str:
    """The address to open: 127.0.0.1 for every interface, IPv6 addresses in brackets."""
    host = host.strip("[]")
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    demo: Any, host: str = "127.0.0.1", port: int = 7860, banner: str = "", max_body: int = MAX_BODY_BYTES
) -> None:
    """Serve the page until interrupted: local only, no share link, nothing fetched from outside (the
    default theme's fonts are bundled with gradio; server-side rendering would need node), behind a
    PageGate for `host`. `banner` is printed once the page is being served."""
    import gradio as gr
    from starlette.middleware import Middleware  # gradio's own web framework

    # The gate goes in through the FastAPI app's constructor, so it is in the middleware stack before
    # the server takes its first request. Gradio's file-size cap is set to nothing as a second line,
    # and the launch options whose defaults (or GRADIO_* variables) would add routes or processes the
    # page does not use are turned off: static-file workers (their own ports, outside the gate), the
    # MCP server, the monitoring dashboard, the run-history page.
    gate = Middleware(PageGate, host=host, max_body=max_body)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            ssr_mode=False,
            css=CSS,
            quiet=True,
            theme=gr.themes.Default(),
            footer_links=["api", "settings"],
            prevent_thread_lock=True,
            app_kwargs={"middleware": [gate]},
            max_file_size=0,
            num_workers=0,
            mcp_server=False,
            enable_monitoring=False,
            run_history=False,
        )
    except OSError as exc:
        # gradio's own message names launch() parameters; say it in the command's terms
        reason = "the port is taken" if "empty port" in str(exc) else str(exc)
        raise ConfigError(
            f"Cannot serve on {host}:{port}: {reason}. Choose another port with --port N "
            f"(or another address with --host H)."
        ) from None
    if not any(m.cls is PageGate for m in getattr(demo.app, "user_middleware", ())):
        demo.close()
        raise ConfigError(
            f"This gradio ({gr.__version__}) did not take the page's request gate, so the page is "
            f"not served; install the tested version: pip install -c constraints.txt 'rlarena[app]'"
        )
    if banner:
        print(banner, flush=True)
    try:
        demo.block_thread()  # returns on Ctrl+C, after closing the server
    finally:
        demo.close()
