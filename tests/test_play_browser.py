"""`rlarena play connect4` tested as a person uses it: the command serves the page (torch blocked in
its process, so serving needs onnxruntime alone), headless Chromium plays a whole game by clicking
columns it reads as legal on the page, the page announces the result, a screenshot is kept; another
whole game against the search agent (an AlphaZero network, MCTS in numpy, still without torch); two
browser sessions keep their own boards; the page fetches nothing from outside this machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio")
pytest.importorskip("onnxruntime")
webdriver = pytest.importorskip("selenium.webdriver")
from play_server import REPO, serve_page
from selenium.webdriver.chrome.service import Service  # after the importorskip above
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.timeout(600)  # a guard against a hung browser or server, not a speed check
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# the player's preference among legal columns: the centre first, as people tend to play
PREFERENCE = (3, 2, 4, 1, 5, 0, 6)

# What the page shows, read from the DOM the way the test's "eyes" see it
READ_PAGE = """
const grid = document.querySelector('#c4-board .c4-grid');
const status = document.querySelector('#c4-status');
if (!grid || !status) return null;
return {moves: Number(grid.dataset.moves), result: grid.dataset.result, status: status.innerText.trim(),
        top: Array.from(grid.querySelectorAll('[data-row="0"]')).map(cell => Number(cell.dataset.piece)),
        pieces: grid.querySelectorAll('.c4-red, .c4-yellow').length,
        legend: document.querySelector('#c4-board .c4-legend').innerText};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    yield from serve_page(tmp_path_factory.mktemp("play"))


@pytest.fixture(scope="module")
def search_server(tmp_path_factory) -> Iterator[str]:
    """The page over an untrained AlphaZero network kept in its checkpoint's directory (as the shipped
    agent is), so the page offers the search levels by itself; --search picks small ones (fast games)."""
    from rlarena.algorithms.alphazero import AlphaZeroConfig

    tmp = tmp_path_factory.mktemp("play_search")
    algo = (
        AlphaZeroConfig()
        .environment("connect_four")
        .training(
            num_parallel_games=2,
            train_batch_size=8,
            minibatch_size=8,
            replay_buffer_config={"capacity": 64},
            mcts_config={"num_simulations": 8},
            num_steps_sampled_before_learning_starts=8,
        )
        .build()
    )
    try:
        model = algo.export_onnx(Path(algo.save(tmp / "ckpt")) / "model.onnx", "default_policy")
    finally:
        algo.stop()
    yield from serve_page(tmp, "--onnx", str(model), "--search", "20,100")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver on PATH: bash scripts/install-chromium.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # given explicitly, so selenium-manager never looks online
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--window-size=1000,1300",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def read(driver: Any) -> dict[str, Any] | None:
    return driver.execute_script(READ_PAGE)


def wait_for(driver: Any, condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    def check(d: Any) -> dict[str, Any] | bool:
        page = read(d)
        return page if page is not None and condition(page) else False

    try:
        return WebDriverWait(driver, 60, poll_frequency=0.05).until(check)  # returns as soon as it shows
    except Exception as exc:
        raise AssertionError(f"the page never showed {what}; it shows {read(driver)}") from exc


def open_game(driver: Any, url: str) -> dict[str, Any]:
    driver.get(url)
    return wait_for(driver, lambda p: p["status"].startswith("New game"), "a new game")


def choose(driver: Any, group: str, label: str) -> None:
    driver.find_element(By.XPATH, f"//*[@id='{group}']//label[normalize-space(.)='{label}']").click()


def play_to_the_end(browser: Any, page: dict[str, Any]) -> dict[str, Any]:
    """Click legal columns (the centre first) until the game ends; the page after the last move."""
    turns = 0
    while not page["result"]:
        column = next(c for c in PREFERENCE if page["top"][c] == 0)  # a column whose top cell is empty
        # people use both: the numbered button above a column, or the board's cell itself
        target = f"#c4-col-{column}" if turns % 2 == 0 else f'#c4-board [data-row="0"][data-col="{column}"]'
        browser.find_element(By.CSS_SELECTOR, target).click()
        moves = page["moves"]
        page = wait_for(browser, lambda p, moves=moves: p["moves"] > moves, f"a move after move {moves}")
        assert page["result"] or page["moves"] == moves + 2, "the agent answers each move at once"
        assert "You played column" in page["status"]
        turns += 1
        assert turns <= 21, "a game has at most 21 moves per player"
    announcement = {"win": "You win!", "loss": "wins.", "draw": "Draw: the board is full."}[page["result"]]
    assert announcement in page["status"] and "Press New game" in page["status"]
    return page


def test_a_whole_game_against_the_shipped_agent(server, browser, tmp_path):
    page = open_game(browser, server)
    assert page["pieces"] == 0 and "You play red and move first" in page["status"]
    # the agent shipped with rlarena (its model.onnx, served by onnxruntime) is the default opponent:
    # its network alone, or its strongest search level when the shipped network is AlphaZero's
    default = browser.find_element(By.CSS_SELECTOR, "#c4-opponent input:checked").get_attribute("value")
    assert default == "network" or default.startswith("search_")
    assert "network alone (no search)" in browser.find_element(By.ID, "c4-opponent").text
    assert ": yellow" in page["legend"]
    outside = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(name => !name.startsWith(location.origin))"
    )
    assert outside == [], f"the page fetched from outside this machine: {outside}"

    page = play_to_the_end(browser, page)
    shot = tmp_path / "connect_four_game_over.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    # a move after the end is refused with a message, the board unchanged; New game starts over
    browser.find_element(By.CSS_SELECTOR, "#c4-col-0").click()
    refused = wait_for(browser, lambda p: "The game is over" in p["status"], "the game-over refusal")
    assert refused["moves"] == page["moves"] and refused["result"] == page["result"]
    browser.find_element(By.ID, "c4-new").click()
    wait_for(browser, lambda p: p["moves"] == 0 and not p["result"], "a fresh board")


def test_a_whole_game_against_the_search_agent(search_server, browser):
    page = open_game(browser, search_server)
    levels = browser.find_element(By.ID, "c4-opponent").text
    for label in ("network alone (no search)", "search, 20 simulations", "search, 100 simulations", "negamax, depth 7"):
        assert label in levels
    # the strongest search level is the default; the agent opens, then the human plays it out
    assert browser.find_element(By.CSS_SELECTOR, "#c4-opponent input:checked").get_attribute("value") == "search_100"
    choose(browser, "c4-first", "Agent")
    browser.find_element(By.ID, "c4-new").click()
    page = wait_for(browser, lambda p: p["moves"] == 1, "the search agent's opening")
    assert "search, 100 simulations (red) opened in column" in page["status"]
    assert "search, 100 simulations: red" in page["legend"]
    play_to_the_end(browser, page)


def test_two_browser_sessions_keep_their_own_boards(server, browser):
    first_tab = browser.current_window_handle
    open_game(browser, server)
    browser.find_element(By.ID, "c4-col-0").click()
    wait_for(browser, lambda p: p["moves"] == 2, "the first tab's two pieces")

    browser.switch_to.new_window("tab")  # a second page load: another Gradio session
    try:
        second = open_game(browser, server)
        assert second["pieces"] == 0, "a new session starts on an empty board"
        choose(browser, "c4-first", "Agent")
        choose(browser, "c4-opponent", "negamax, depth 1")
        browser.find_element(By.ID, "c4-new").click()
        second = wait_for(browser, lambda p: p["moves"] == 1, "the agent's opening")
        assert "negamax, depth 1 (red) opened in column" in second["status"]
        assert "negamax, depth 1: red" in second["legend"]
        browser.find_element(By.ID, "c4-col-6").click()
        second = wait_for(browser, lambda p: p["moves"] == 3, "the second tab's third piece")

        browser.switch_to.window(first_tab)
        first = read(browser)
        assert first is not None and first["moves"] == 2 and "negamax" not in first["legend"]
        # the first session's next move continues its own game on the server: 4 pieces, not 5
        browser.find_element(By.ID, "c4-col-0").click()
        first = wait_for(browser, lambda p: p["moves"] > 2, "the first tab's next move")
        assert first["moves"] == 4 and first["pieces"] == 4
    finally:
        for handle in browser.window_handles:
            if handle != first_tab:
                browser.switch_to.window(handle)
                browser.close()
        browser.switch_to.window(first_tab)


def test_a_taken_port_is_one_line_error(server):
    port = server.rsplit(":", 1)[1].strip("/")
    proc = subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", "play", "connect4", "--port", port],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.strip() == f"error: Cannot serve on 127.0.0.1:{port}: the port is taken. Choose another "
        "port with --port N (or another address with --host H)."
    )
