import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStats, statusView } from '../src/status';

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
