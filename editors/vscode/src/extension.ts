// dg-lsp for VS Code: starts `dg-lsp serve`, and the language client does the rest (inline
// completions come from vscode-languageclient's inline-completion feature). This file adds the
// commands, the status bar item fed by `dg/status`, and the settings push.
import * as os from 'os';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { editsFor, endOfInserted } from './edits';
import { CLIENT_KEYS, SECTION, effectiveValue, needsRestart, resolveServerCommand, serverSettings } from './settings';
import {
  AskedAt,
  STATUS_METHOD,
  StatusParams,
  becameReady,
  describeError,
  formatStats,
  hasModel,
  shouldAskAgain,
  statusView,
} from './status';

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
let serverState = 'starting';
/** The document the user last typed in (or asked for a suggestion in) while the server had no model. */
let askedWithoutModel: AskedAt | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('dg-lsp', { log: true });
  statusItem = vscode.window.createStatusBarItem('dgLsp.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'dg-lsp';
  statusItem.command = 'dgLsp.showStats';
  setStatus('starting');
  statusItem.show();
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand('dgLsp.fillSelection', fillSelection),
    vscode.commands.registerCommand('dgLsp.rewriteMarkdown', rewriteMarkdown),
    vscode.commands.registerCommand('dgLsp.showStats', showStats),
    vscode.commands.registerCommand('dgLsp.restartServer', restart),
    // Restricted Mode ignored the workspace's values of the restricted settings; now they count
    vscode.workspace.onDidGrantWorkspaceTrust(() => restart()),
    // typing before the model is ready gets nothing (the client may not even have asked yet)
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (!hasModel(serverState) && e.contentChanges.length > 0 && e.document === vscode.window.activeTextEditor?.document) {
        askedWithoutModel = { uri: e.document.uri.toString(), version: e.document.version };
      }
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (needsRestart((s) => e.affectsConfiguration(s))) {
        await restart();
      } else if (e.affectsConfiguration(SECTION) && client?.isRunning()) {
        await client.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { [SECTION]: currentServerSettings() },
        });
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

function currentServerSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION);
  // keys present in the section beyond the declared ones: settings newer than this extension
  const extra = Object.keys(config).filter((k) => typeof (config as any)[k] !== 'function' && !CLIENT_KEYS.has(k));
  return serverSettings((key) => config.inspect(key), extra, vscode.workspace.isTrusted);
}

async function start(): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  let serverOptions: ServerOptions;
  try {
    const trusted = vscode.workspace.isTrusted;
    const cmd = resolveServerCommand({
      serverCommand: effectiveValue(config.inspect('serverCommand'), 'serverCommand', trusted),
      pythonPath: effectiveValue(config.inspect('pythonPath'), 'pythonPath', trusted),
      home: os.homedir(),
      workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    });
    // no `transport` on purpose: TransportKind.stdio would append `--stdio` to the arguments
    serverOptions = { command: cmd.command, args: cmd.args };
    output.appendLine(`starting: ${cmd.command} ${cmd.args.join(' ')}${trusted ? '' : ' (Restricted Mode: user settings only)'}`);
  } catch (e) {
    setStatus('error', describeError(e));
    void vscode.window.showErrorMessage(describeError(e));
    return;
  }
  const clientOptions: LanguageClientOptions = {
    // every file: the server decides per language (dgLsp.enabledLanguages / disabledLanguages)
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: { [SECTION]: currentServerSettings() },
    outputChannel: output,
    middleware: { provideInlineCompletionItems: rememberAskedWithoutModel },
  };
  const c = new LanguageClient('dgLsp', 'dg-lsp', serverOptions, clientOptions);
  c.onNotification(STATUS_METHOD, (p: StatusParams) => {
    const before = serverState;
    setStatus(p?.state ?? 'error', p?.message ?? '');
    if (becameReady(before, serverState)) {
      void askAgainAtCursor();
    }
  });
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped && client === c) { // not the old client of a restart
      setStatus('stopped');
    }
  });
  client = c;
  try {
    await c.start();
  } catch (e) {
    setStatus('error', `the server did not start: ${describeError(e)}`);
    const open = 'Open settings';
    const pick = await vscode.window.showErrorMessage(
      `dg-lsp: the server did not start (${serverOptions.command}). Set dgLsp.serverCommand or dgLsp.pythonPath.`,
      open,
    );
    if (pick === open) {
      await vscode.commands.executeCommand('workbench.action.openSettings', SECTION);
    }
  }
}

async function restart(): Promise<void> {
  const old = client;
  client = undefined;
  setStatus('starting');
  if (old) {
    try {
      await old.stop();
    } catch (e) {
      output.appendLine(`stopping the server: ${describeError(e)}`);
    }
  }
  await start();
}

function setStatus(state: string, message = ''): void {
  serverState = state;
  const view = statusView(state, message);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
  statusItem.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
}

function runningClient(): LanguageClient | undefined {
  if (!client?.isRunning()) {
    void vscode.window.showWarningMessage('dg-lsp: the server is not running (see the dg-lsp output).');
    return undefined;
  }
  return client;
}

/** workspace/executeCommand with the server's one-object argument; errors become messages. */
async function execute(command: string, argument: object, title?: string): Promise<unknown> {
  const c = runningClient();
  if (!c) {
    return undefined;
  }
  const send = () => c.sendRequest(ExecuteCommandRequest.type, { command, arguments: [argument] });
  try {
    if (!title) {
      return await send();
    }
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title },
      () => send(),
    );
  } catch (e) {
    void vscode.window.showErrorMessage(`dg-lsp: ${command} failed: ${describeError(e)}`);
    return undefined;
  }
}

async function fillSelection(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const c = runningClient();
  if (!editor || !c) {
    return;
  }
  if (editor.selection.isEmpty) {
    void vscode.window.showInformationMessage('dg-lsp: select the text to regenerate first.');
    return;
  }
  // the server applies the edit itself (workspace/applyEdit) and answers with it
  const uri = c.code2ProtocolConverter.asUri(editor.document.uri);
  const result = await execute(
    'dg.fillSelection',
    { uri, range: c.code2ProtocolConverter.asRange(editor.selection) },
    'dg-lsp: filling the selection',
  );
  const [edit] = editsFor(result, uri);
  if (!edit) {
    return;
  }
  // VS Code maps the old selection through the replacement, which leaves a few stray characters
  // selected: put the cursor after the new text instead, if the document still holds it there
  const start = c.protocol2CodeConverter.asPosition(edit.range.start);
  const end = c.protocol2CodeConverter.asPosition(endOfInserted(edit));
  const eol = editor.document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n';
  const expected = edit.newText.replace(/\r\n|\r|\n/g, eol);
  if (editor.document.getText(new vscode.Range(start, end)) === expected) {
    editor.selection = new vscode.Selection(end, end);
  }
}

/** Middleware: note an inline completion asked for (Alt+\ included) while the server has no model. */
async function rememberAskedWithoutModel(
  document: vscode.TextDocument,
  position: vscode.Position,
  context: vscode.InlineCompletionContext,
  token: vscode.CancellationToken,
  next: (
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ) => vscode.ProviderResult<vscode.InlineCompletionItem[] | vscode.InlineCompletionList>,
): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined> {
  const asked = hasModel(serverState) ? undefined : { uri: document.uri.toString(), version: document.version };
  const result = await next(document, position, context, token);
  const items = Array.isArray(result) ? result : result?.items;
  if (asked && !items?.length) {
    askedWithoutModel = asked;
  }
  return result;
}

/** The model just became ready: ask again at the cursor if the user typed before (that got nothing). */
async function askAgainAtCursor(): Promise<void> {
  const asked = askedWithoutModel;
  askedWithoutModel = undefined;
  const editor = vscode.window.activeTextEditor;
  const now = editor && {
    uri: editor.document.uri.toString(),
    version: editor.document.version,
    selectionEmpty: editor.selection.isEmpty,
  };
  if (shouldAskAgain(asked, now)) {
    output.appendLine('model ready: asking again for the inline completion at the cursor');
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
  }
}

async function rewriteMarkdown(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const c = runningClient();
  if (!editor || !c) {
    return;
  }
  if (editor.document.languageId !== 'markdown') {
    void vscode.window.showInformationMessage('dg-lsp: Rewrite Markdown works on Markdown documents.');
    return;
  }
  const argument: Record<string, unknown> = { uri: c.code2ProtocolConverter.asUri(editor.document.uri) };
  if (!editor.selection.isEmpty) {
    argument.range = c.code2ProtocolConverter.asRange(editor.selection);
  }
  await execute('dg.rewriteMarkdown', argument, 'dg-lsp: rewriting Markdown');
}

async function showStats(): Promise<void> {
  const stats = await execute('dg.stats', {});
  if (stats === undefined) {
    return;
  }
  const lines = formatStats(stats);
  output.appendLine(lines.join('\n'));
  const details = 'Details';
  if ((await vscode.window.showInformationMessage(lines[0], details)) === details) {
    output.show(true);
  }
}
