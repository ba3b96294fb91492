// Pure presentation of the server's `dg/status` notification and of `dg.stats` (no `vscode` import).

export const STATUS_METHOD = 'dg/status';

export type ServerState = 'starting' | 'loading' | 'ready' | 'busy' | 'error' | 'stopped';

export interface StatusParams {
  state: string;
  message?: string;
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

const ICONS: Record<ServerState, string> = {
  starting: '$(loading~spin)',
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  busy: '$(sync~spin)',
  error: '$(error)',
  stopped: '$(circle-slash)',
};

const LABELS: Record<ServerState, string> = {
  starting: 'starting the server',
  loading: 'loading the model',
  ready: 'ready',
  busy: 'generating',
  error: 'error',
  stopped: 'server stopped',
};

export function isState(s: unknown): s is ServerState {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ICONS, s);
}

/** Status bar text and tooltip for a server state; unknown states show as-is. */
export function statusView(state: string, message = ''): StatusView {
  const known = isState(state);
  const icon = known ? ICONS[state] : '$(question)';
  const label = known ? LABELS[state] : state;
  const detail = message && message !== 'idle' && message !== 'working' ? `: ${message}` : '';
  return {
    text: `${icon} dg`,
    tooltip: `dg-lsp ${label}${detail}\nClick for statistics`,
    error: state === 'error',
  };
}

function show(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 3 : 1);
  }
  if (value === null || value === undefined) {
    return '-';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `dg.stats` as aligned "key  value" lines, preceded by a one-line summary. */
export function formatStats(stats: unknown): string[] {
  if (stats === null || typeof stats !== 'object' || Array.isArray(stats)) {
    return [`dg-lsp stats: unexpected answer ${JSON.stringify(stats)}`];
  }
  const s = stats as Record<string, unknown>;
  const pick = (name: string) => s[name];
  const p50 = pick('latencyP50Ms');
  const p95 = pick('latencyP95Ms');
  const parts = [`state ${show(s.state)}`];
  if (p50 !== undefined || p95 !== undefined) {
    parts.push(`latency p50 ${show(p50)} ms, p95 ${show(p95)} ms`);
  }
  if (s.forwardsPerToken !== undefined) {
    parts.push(`${show(s.forwardsPerToken)} forwards/token`);
  }
  if (s.contextCacheHitRate !== undefined) {
    parts.push(`cache hits ${Math.round(100 * Number(s.contextCacheHitRate))}%`);
  }
  if (s.accepted !== undefined) {
    parts.push(`accepted ${show(s.accepted)}`);
  }
  const keys = Object.keys(s).sort();
  const width = Math.max(0, ...keys.map((k) => k.length));
  return [`dg-lsp: ${parts.join(', ')}`, ...keys.map((k) => `  ${k.padEnd(width)}  ${show(s[k])}`)];
}

/**
 * A readable message for anything a promise rejects with: vscode-languageclient rejects a failed
 * start with a plain string (`Launching server using command dg-lsp failed. Error: spawn dg-lsp ENOENT`),
 * which has no `.message`.
 */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    return e.message || e.name;
  }
  if (typeof e === 'string' && e !== '') {
    return e;
  }
  if (e !== null && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  if (e === undefined || e === null || e === '') {
    return 'unknown error (see the dg-lsp output)';
  }
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

/**
 * Whether the change from `before` to `after` is the model becoming ready (after start, a reload or
 * an error), as opposed to the end of a busy spell, which must not trigger a new request.
 */
export function becameReady(before: string, after: string): boolean {
  return after === 'ready' && before !== 'ready' && before !== 'busy';
}

/** Whether the server answers from a model now: requests sent in any other state come back empty. */
export function hasModel(state: string): boolean {
  return state === 'ready' || state === 'busy';
}

/** A document as it was when the user typed or asked for a suggestion: its URI and version. */
export interface AskedAt {
  uri: string;
  version: number;
}

/**
 * Whether to ask again when the model becomes ready: only if the user typed (or asked) while there
 * was none, and the editor still shows that document unchanged since, with no selection. The request
 * is for the cursor's position, wherever it is now.
 */
export function shouldAskAgain(asked: AskedAt | undefined, now: (AskedAt & { selectionEmpty: boolean }) | undefined): boolean {
  return asked !== undefined && now !== undefined && now.selectionEmpty && now.uri === asked.uri && now.version === asked.version;
}
