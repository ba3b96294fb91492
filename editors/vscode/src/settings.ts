// Pure mapping from the `dgLsp.*` configuration to what the server gets (no `vscode` import, so
// `node --test` can load it).

export const SECTION = 'dgLsp';

/** Settings the server knows (dg_lsp/settings.py); they are declared in package.json. */
export const SERVER_KEYS = [
  'model',
  'remoteModel',
  'trustRemoteCode',
  'device',
  'dtype',
  'threads',
  'kernels',
  'policy',
  'automaticBudgetMs',
  'invokedBudgetMs',
  'maxTokens',
  'contextTokens',
  'enabledLanguages',
  'disabledLanguages',
  'workspaceEnabled',
  'workspaceMaxFiles',
  'workspaceMaxFileBytes',
  'workspaceMaxBytes',
  'drafts',
  'lineLibrary',
  'snippets',
  'snippetTokens',
  'maxDenoisingSteps',
  'vision',
  'deviceMap',
  'maxMemory',
  'quantization',
  'remotePrompt',
] as const;

/** Settings only this extension reads; never forwarded (the server reports unknown keys). */
export const CLIENT_KEYS = new Set(['serverCommand', 'pythonPath', 'trace']);

/**
 * Settings that decide which program runs (the server, or a model folder's own code). In an untrusted
 * workspace (Restricted Mode) only their user values count; package.json declares the same list in
 * `capabilities.untrustedWorkspaces.restrictedConfigurations`.
 */
export const RESTRICTED_KEYS = new Set(['serverCommand', 'pythonPath', 'model', 'trustRemoteCode']);

/** The shape of `WorkspaceConfiguration.inspect(key)` that matters here. */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value the user set (most specific scope wins), or undefined when only the default applies.
 * `userOnly` ignores the workspace and folder values (a restricted key in an untrusted workspace).
 */
export function explicitValue(inspected: Inspected | undefined, userOnly = false): unknown {
  if (!inspected) {
    return undefined;
  }
  const scopes = userOnly
    ? [inspected.globalValue]
    : [inspected.workspaceFolderValue, inspected.workspaceValue, inspected.globalValue];
  for (const v of scopes) {
    if (v !== undefined) {
      return v;
    }
  }
  return undefined;
}

/** The value in effect for `key`: the user's (scopes as `explicitValue`, trust applied), else the default. */
export function effectiveValue(inspected: Inspected | undefined, key: string, trusted: boolean): unknown {
  const v = explicitValue(inspected, !trusted && RESTRICTED_KEYS.has(key));
  return v !== undefined ? v : inspected?.defaultValue;
}

/**
 * The `dgLsp` object for initializationOptions and workspace/didChangeConfiguration: only the keys
 * the user set, so the server's own defaults stay authoritative (a push replaces the server's
 * settings, and a key left out goes back to its default). `extraKeys` are other keys found in the
 * section (settings newer than this extension); client-only keys are dropped. In an untrusted
 * workspace (`trusted` false) the workspace values of RESTRICTED_KEYS are left out.
 */
export function serverSettings(
  inspect: (key: string) => Inspected | undefined,
  extraKeys: Iterable<string> = [],
  trusted = true,
): Record<string, unknown> {
  const keys = new Set<string>(SERVER_KEYS);
  for (const k of extraKeys) {
    if (!CLIENT_KEYS.has(k)) {
      keys.add(k);
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of [...keys].sort()) {
    const v = explicitValue(inspect(key), !trusted && RESTRICTED_KEYS.has(key));
    if (v !== undefined) {
      out[key] = v;
    }
  }
  return out;
}

export interface ServerCommandInput {
  serverCommand: unknown;
  pythonPath: unknown;
  home: string;
  workspaceFolder?: string;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

export const DEFAULT_COMMAND: ServerCommand = { command: 'dg-lsp', args: ['serve'] };

function expand(s: string, input: ServerCommandInput): string {
  let out = s;
  if (out === '~' || out.startsWith('~/')) {
    out = input.home + out.slice(1);
  }
  if (input.workspaceFolder !== undefined) {
    out = out.split('${workspaceFolder}').join(input.workspaceFolder);
  }
  return out;
}

/**
 * How to start the server: `dgLsp.serverCommand` when set, else `<dgLsp.pythonPath> -m dg_lsp serve`,
 * else `dg-lsp serve` from PATH. Throws an Error naming the bad value.
 */
export function resolveServerCommand(input: ServerCommandInput): ServerCommand {
  const cmd = input.serverCommand;
  if (cmd !== undefined && cmd !== null && !(Array.isArray(cmd) && cmd.length === 0)) {
    if (!Array.isArray(cmd) || !cmd.every((a) => typeof a === 'string') || cmd[0].trim() === '') {
      throw new Error(
        `dgLsp.serverCommand must be a list of strings starting with the program, got ${JSON.stringify(cmd)}`,
      );
    }
    const [command, ...args] = (cmd as string[]).map((a) => expand(a, input));
    return { command, args };
  }
  const py = input.pythonPath;
  if (py !== undefined && py !== null && py !== '') {
    if (typeof py !== 'string' || py.trim() === '') {
      throw new Error(`dgLsp.pythonPath must be a path to a Python interpreter, got ${JSON.stringify(py)}`);
    }
    return { command: expand(py, input), args: ['-m', 'dg_lsp', 'serve'] };
  }
  return { command: DEFAULT_COMMAND.command, args: [...DEFAULT_COMMAND.args] };
}

/** Whether a configuration change needs a server restart rather than a settings push. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects(`${SECTION}.serverCommand`) || affects(`${SECTION}.pythonPath`);
}
