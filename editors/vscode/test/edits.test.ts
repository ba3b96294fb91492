import assert from 'node:assert/strict';
import { test } from 'node:test';
import { editsFor, endOfInserted } from '../src/edits';

const uri = 'file:///w/add.py';
const edit = { range: { start: { line: 1, character: 4 }, end: { line: 1, character: 17 } }, newText: 'total = a + b' };

test('editsFor reads versioned documentChanges and plain changes, for this document only', () => {
  assert.deepEqual(editsFor({ documentChanges: [{ textDocument: { uri, version: 2 }, edits: [edit] }] }, uri), [edit]);
  assert.deepEqual(editsFor({ changes: { [uri]: [edit] } }, uri), [edit]);
  assert.deepEqual(editsFor({ changes: { 'file:///other.py': [edit] } }, uri), []);
  for (const nothing of [undefined, null, 'x', {}]) {
    assert.deepEqual(editsFor(nothing, uri), []);
  }
});

test('endOfInserted: same line, several lines, CRLF, and UTF-16 code units', () => {
  assert.deepEqual(endOfInserted(edit), { line: 1, character: 17 });
  assert.deepEqual(endOfInserted({ ...edit, newText: 'x = 1\n    y = 2' }), { line: 2, character: 9 });
  assert.deepEqual(endOfInserted({ ...edit, newText: 'x = 1\r\n    y' }), { line: 2, character: 5 });
  assert.deepEqual(endOfInserted({ ...edit, newText: 'a\n' }), { line: 2, character: 0 });
  assert.deepEqual(endOfInserted({ ...edit, newText: '😀' }), { line: 1, character: 6 }); // a surrogate pair
  assert.deepEqual(endOfInserted({ ...edit, newText: '' }), { line: 1, character: 4 });
});
