// The server's own answer for one position, from a fresh `dg-lsp serve` that no editor has talked to:
// initialize with the given dgLsp settings, wait for dg/status ready, open the document, ask for the
// automatic inline completion at LINE:CHARACTER (0-based, UTF-16) and print the answer as JSON
// ({items: [{insertText, range}], status}). The e2e compares VS Code's ghost text with it.
//
//   node reference.js SETTINGS_JSON FILE LINE CHARACTER -- SERVER_COMMAND...
//
// env: NODE_PATH must reach vscode-jsonrpc (editors/vscode/node_modules).
const cp = require('child_process');
const fs = require('fs');
const path = require('path');
const rpc = require('vscode-jsonrpc/node');

const [settingsJson, file, line, character, dashes, ...server] = process.argv.slice(2);
if (dashes !== '--' || server.length === 0) {
  console.error('usage: node reference.js SETTINGS_JSON FILE LINE CHARACTER -- SERVER_COMMAND...');
  process.exit(2);
}
const TIMEOUT_MS = 120000;

(async () => {
  const proc = cp.spawn(server[0], server.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => {
    console.error(`reference: no answer within ${TIMEOUT_MS} ms`);
    proc.kill('SIGKILL');
    process.exit(1);
  }, TIMEOUT_MS);
  const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(proc.stdout), new rpc.StreamMessageWriter(proc.stdin));
  let status = null;
  const ready = new Promise((resolve, reject) => {
    conn.onNotification('dg/status', (p) => {
      status = p;
      if (p.state === 'ready') resolve();
      if (p.state === 'error') reject(new Error(`server error: ${p.message}`));
    });
  });
  conn.onNotification(() => {}); // window/logMessage and the like
  conn.onRequest(() => null); // window/workDoneProgress/create and the like
  conn.listen();
  const uri = `file://${path.resolve(file)}`;
  await conn.sendRequest('initialize', {
    processId: process.pid,
    rootUri: null,
    capabilities: { textDocument: { inlineCompletion: {} } },
    initializationOptions: { dgLsp: JSON.parse(settingsJson) },
  });
  await conn.sendNotification('initialized', {});
  await ready;
  await conn.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version: 1, text: fs.readFileSync(file, 'utf8') },
  });
  const answer = await conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri },
    position: { line: Number(line), character: Number(character) },
    context: { triggerKind: 2 }, // automatic, as VS Code sends it while typing
  });
  const items = (Array.isArray(answer) ? answer : answer.items).map((i) => ({
    insertText: typeof i.insertText === 'string' ? i.insertText : i.insertText.value,
    range: i.range,
  }));
  console.log(JSON.stringify({ items, status }));
  await conn.sendRequest('shutdown');
  await conn.sendNotification('exit');
  clearTimeout(timer);
  conn.dispose();
  proc.stdin.end();
})().catch((e) => {
  console.error(`reference: ${e.message}`);
  process.exit(1);
});
