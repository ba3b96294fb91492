// Pure reading of the server's answers to commands (no `vscode` import, so `node --test` can load it).

/** An LSP position: UTF-16 code units, as VS Code counts them. */
export interface Pos {
  line: number;
  character: number;
}

export interface ProtocolTextEdit {
  range: { start: Pos; end: Pos };
  newText: string;
}

/** The text edits for `uri` in a protocol WorkspaceEdit (`changes` or `documentChanges`). */
export function editsFor(edit: unknown, uri: string): ProtocolTextEdit[] {
  if (edit === null || typeof edit !== 'object') {
    return [];
  }
  const e = edit as { changes?: Record<string, ProtocolTextEdit[]>; documentChanges?: unknown[] };
  const out: ProtocolTextEdit[] = [];
  for (const change of e.documentChanges ?? []) {
    const c = change as { textDocument?: { uri?: string }; edits?: ProtocolTextEdit[] };
    if (c.textDocument?.uri === uri && Array.isArray(c.edits)) {
      out.push(...c.edits);
    }
  }
  if (e.changes && Array.isArray(e.changes[uri])) {
    out.push(...e.changes[uri]);
  }
  return out;
}

/** Where the new text of `edit` ends once applied (the edit's range starts where its text starts). */
export function endOfInserted(edit: ProtocolTextEdit): Pos {
  const lines = edit.newText.split(/\r\n|\r|\n/);
  const last = lines[lines.length - 1];
  const start = edit.range.start;
  return lines.length === 1
    ? { line: start.line, character: start.character + last.length }
    : { line: start.line + lines.length - 1, character: last.length };
}
