import assert from 'node:assert/strict';
import { test } from 'node:test';
import { becameReady, describeError, formatStats, hasModel, shouldAskAgain, statusView } from '../src/status';

test('each server state has its own icon; errors are flagged', () => {
  const texts = ['starting', 'loading', 'ready', 'busy', 'error', 'stopped'].map((s) => statusView(s).text);
  assert.equal(new Set(texts.slice(1)).size, 5);
  assert.ok(texts.every((t) => t.endsWith(' dg')));
  assert.equal(statusView('error', 'x').error, true);
  assert.equal(statusView('ready').error, false);
});

test('the tooltip carries the server message, but not the idle/working chatter', () => {
  assert.match(statusView('error', 'model failed to load').tooltip, /error: model failed to load/);
  assert.match(statusView('ready', 'tiny (random weights) on cpu').tooltip, /ready: tiny/);
  assert.doesNotMatch(statusView('ready', 'idle').tooltip, /idle/);
});

test('an unknown state is shown rather than hidden', () => {
  const v = statusView('paused', 'by user');
  assert.match(v.text, /\$\(question\) dg/);
  assert.match(v.tooltip, /paused: by user/);
});

test('stats: a summary line, then one aligned line per key', () => {
  const lines = formatStats({
    state: 'ready',
    latencyP50Ms: 41.234,
    latencyP95Ms: 120.5,
    forwardsPerToken: 0.25,
    contextCacheHitRate: 0.5,
    accepted: 3,
    model: null,
  });
  assert.equal(
    lines[0],
    'dg-lsp: state ready, latency p50 41.2 ms, p95 120.5 ms, 0.250 forwards/token, cache hits 50%, accepted 3',
  );
  assert.equal(lines.length, 8);
  assert.ok(lines.includes('  model                -'));
});

test('stats: a non-object answer is reported, not thrown', () => {
  assert.match(formatStats(null)[0], /unexpected answer null/);
});

test('describeError: the string vscode-languageclient rejects a failed start with is shown, never "undefined"', () => {
  const spawnFailure = 'Launching server using command dg-lsp failed. Error: spawn dg-lsp ENOENT';
  assert.equal(describeError(spawnFailure), spawnFailure);
  assert.equal(describeError(new Error('boom')), 'boom');
  assert.equal(describeError({ message: 'from an object' }), 'from an object');
  for (const e of [undefined, null, '']) {
    assert.match(describeError(e), /unknown error/);
  }
  assert.equal(describeError({ code: 3 }), '{"code":3}');
  assert.doesNotMatch(describeError(new Error('')), /undefined/);
});

test('becameReady: the model arriving (start, reload, recovery) counts; the end of a busy spell does not', () => {
  for (const before of ['starting', 'loading', 'error', 'stopped']) {
    assert.equal(becameReady(before, 'ready'), true, before);
  }
  assert.equal(becameReady('busy', 'ready'), false);
  assert.equal(becameReady('ready', 'ready'), false);
  assert.equal(becameReady('loading', 'busy'), false);
  assert.equal(becameReady('loading', 'error'), false);
  assert.deepEqual(['ready', 'busy', 'loading', 'starting', 'error'].map(hasModel), [true, true, false, false, false]);
});

test('shouldAskAgain: only in the document typed in without a model, unchanged since, with no selection', () => {
  const asked = { uri: 'file:///a.py', version: 3 };
  const here = { ...asked, selectionEmpty: true };
  assert.equal(shouldAskAgain(asked, here), true);
  assert.equal(shouldAskAgain(undefined, here), false, 'nothing was typed while loading');
  assert.equal(shouldAskAgain(asked, undefined), false, 'no editor');
  assert.equal(shouldAskAgain(asked, { ...here, version: 4 }), false, 'typed since: VS Code asked by itself');
  assert.equal(shouldAskAgain(asked, { ...here, uri: 'file:///b.py' }), false, 'another document');
  assert.equal(shouldAskAgain(asked, { ...here, selectionEmpty: false }), false, 'a selection');
});
