#!/usr/bin/env bash
# Headless Chromium and its WebDriver, for tests/test_play_browser.py (the Connect Four app driven
# through a real browser). Idempotent and never fatal: CI runs it before the tests, and the browser
# test skips (naming this script) when the browser is still missing.
#   bash scripts/install-chromium.sh
set -u

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "chromium and chromedriver are installed: $(command -v chromium), $(command -v chromedriver)"
    exit 0
fi

# Debian/Ubuntu package names; the driver comes from the same distribution so its version matches
packages="chromium chromium-driver"
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo"
    else
        sudo="none"
    fi
    if [ "$sudo" != "none" ]; then
        echo "installing $packages with apt-get"
        if $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y $packages; then
            exit 0
        fi
        echo "apt-get could not install $packages (see above)." >&2
    fi
fi

echo "Install Chromium and its WebDriver yourself to run the browser test, e.g." >&2
echo "  Debian/Ubuntu:  sudo apt-get install -y $packages" >&2
echo "  Fedora:         sudo dnf install -y chromium chromedriver" >&2
echo "  macOS:          brew install --cask chromium chromedriver" >&2
echo "Both commands, chromium and chromedriver, must then be on PATH." >&2
exit 0
