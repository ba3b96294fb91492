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
import { CLIENT_KEYS, SECTION, needsRestart, resolveServerCommand, serverSettings } from './settings';
import { STATUS_METHOD, StatusParams, formatStats, statusView } from './status';

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;

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
  return serverSettings((key) => config.inspect(key), extra);
}

async function start(): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  let serverOptions: ServerOptions;
  try {
    const cmd = resolveServerCommand({
      serverCommand: config.get('serverCommand'),
      pythonPath: config.get('pythonPath'),
      home: os.homedir(),
      workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    });
    // no `transport` on purpose: TransportKind.stdio would append `--stdio` to the arguments
    serverOptions = { command: cmd.command, args: cmd.args };
    output.appendLine(`starting: ${cmd.command} ${cmd.args.join(' ')}`);
  } catch (e) {
    setStatus('error', String((e as Error).message));
    void vscode.window.showErrorMessage(String((e as Error).message));
    return;
  }
  const clientOptions: LanguageClientOptions = {
    // every file: the server decides per language (dgLsp.enabledLanguages / disabledLanguages)
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: { [SECTION]: currentServerSettings() },
    outputChannel: output,
  };
  const c = new LanguageClient('dgLsp', 'dg-lsp', serverOptions, clientOptions);
  c.onNotification(STATUS_METHOD, (p: StatusParams) => setStatus(p?.state ?? 'error', p?.message ?? ''));
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped) {
      setStatus('stopped');
    }
  });
  client = c;
  try {
    await c.start();
  } catch (e) {
    setStatus('error', `the server did not start: ${(e as Error).message}`);
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
      output.appendLine(`stopping the server: ${(e as Error).message}`);
    }
  }
  await start();
}

function setStatus(state: string, message = ''): void {
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
    void vscode.window.showErrorMessage(`dg-lsp: ${command} failed: ${(e as Error).message}`);
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
  // the server applies the edit itself (workspace/applyEdit)
  await execute(
    'dg.fillSelection',
    {
      uri: c.code2ProtocolConverter.asUri(editor.document.uri),
      range: c.code2ProtocolConverter.asRange(editor.selection),
    },
    'dg-lsp: filling the selection',
  );
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
