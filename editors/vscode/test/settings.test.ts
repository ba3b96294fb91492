import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import {
  RESTRICTED_KEYS,
  SECTION,
  effectiveValue,
  explicitValue,
  needsRestart,
  resolveServerCommand,
  serverSettings,
} from '../src/settings';

test('only values the user set are forwarded, most specific scope first', () => {
  const inspected: Record<string, object> = {
    model: { defaultValue: 'default', globalValue: 'tiny' },
    threads: { defaultValue: null, globalValue: 4, workspaceValue: 2 },
    policy: { defaultValue: 'adaptive' },
    disabledLanguages: { defaultValue: ['plaintext'], workspaceFolderValue: [] },
  };
  assert.deepEqual(serverSettings((k) => inspected[k]), { disabledLanguages: [], model: 'tiny', threads: 2 });
});

test('null set explicitly is forwarded (it means "automatic" for threads)', () => {
  assert.equal(explicitValue({ defaultValue: 4, globalValue: null }), null);
  assert.equal(explicitValue(undefined), undefined);
});

test('client-only keys never reach the server; unknown newer keys do', () => {
  const inspected: Record<string, object> = {
    serverCommand: { globalValue: ['x'] },
    pythonPath: { globalValue: '/py' },
    trace: { globalValue: { server: 'verbose' } },
    remoteModel: { globalValue: 'org/model' },
  };
  const out = serverSettings((k) => inspected[k], ['serverCommand', 'pythonPath', 'trace', 'remoteModel']);
  assert.deepEqual(out, { remoteModel: 'org/model' });
});

test('server command: default, python path, explicit command with expansion', () => {
  const base = { home: '/home/u', workspaceFolder: '/ws' };
  assert.deepEqual(resolveServerCommand({ ...base, serverCommand: [], pythonPath: '' }), {
    command: 'dg-lsp',
    args: ['serve'],
  });
  assert.deepEqual(resolveServerCommand({ ...base, serverCommand: undefined, pythonPath: '~/venv/bin/python' }), {
    command: '/home/u/venv/bin/python',
    args: ['-m', 'dg_lsp', 'serve'],
  });
  assert.deepEqual(
    resolveServerCommand({
      ...base,
      serverCommand: ['${workspaceFolder}/.venv/bin/dg-lsp', 'serve', '--log-file', '~/dg.log'],
      pythonPath: '/ignored',
    }),
    { command: '/ws/.venv/bin/dg-lsp', args: ['serve', '--log-file', '/home/u/dg.log'] },
  );
});

test('a bad server command is rejected with the bad value in the message', () => {
  assert.throws(
    () => resolveServerCommand({ home: '/h', serverCommand: 'dg-lsp serve', pythonPath: '' }),
    /dgLsp.serverCommand .*"dg-lsp serve"/,
  );
  assert.throws(() => resolveServerCommand({ home: '/h', serverCommand: [''], pythonPath: '' }), /serverCommand/);
  assert.throws(() => resolveServerCommand({ home: '/h', serverCommand: [], pythonPath: 3 }), /pythonPath .*3/);
});

test('only the server command settings restart the server', () => {
  assert.equal(needsRestart((s) => s === 'dgLsp.pythonPath'), true);
  assert.equal(needsRestart((s) => s === 'dgLsp.serverCommand'), true);
  assert.equal(needsRestart((s) => s === 'dgLsp' || s === 'dgLsp.model'), false);
});

test('Restricted Mode: workspace values of the settings that pick a program are ignored, others are not', () => {
  const inspected: Record<string, object> = {
    model: { defaultValue: 'default', globalValue: 'tiny', workspaceValue: '/ws/evil-model' },
    trustRemoteCode: { defaultValue: false, workspaceFolderValue: true },
    threads: { defaultValue: null, workspaceValue: 2 },
  };
  assert.deepEqual(serverSettings((k) => inspected[k], [], false), { model: 'tiny', threads: 2 });
  assert.deepEqual(serverSettings((k) => inspected[k], [], true), {
    model: '/ws/evil-model',
    threads: 2,
    trustRemoteCode: true,
  });
  const command = { defaultValue: [], globalValue: ['/home/u/venv/bin/dg-lsp', 'serve'], workspaceValue: ['sh', '-c', 'x'] };
  assert.deepEqual(effectiveValue(command, 'serverCommand', false), ['/home/u/venv/bin/dg-lsp', 'serve']);
  assert.deepEqual(effectiveValue(command, 'serverCommand', true), ['sh', '-c', 'x']);
  assert.equal(effectiveValue({ defaultValue: '', workspaceValue: '/ws/python' }, 'pythonPath', false), '');
  assert.equal(effectiveValue(undefined, 'pythonPath', false), undefined);
});

test('package.json declares limited support for untrusted workspaces, restricting exactly RESTRICTED_KEYS', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
  const untrusted = pkg.capabilities?.untrustedWorkspaces;
  assert.equal(untrusted?.supported, 'limited');
  assert.match(untrusted.description, /Restricted Mode/);
  const declared = new Set<string>(untrusted.restrictedConfigurations);
  assert.deepEqual([...declared].sort(), [...RESTRICTED_KEYS].map((k) => `${SECTION}.${k}`).sort());
  for (const key of declared) {
    assert.ok(pkg.contributes.configuration.properties[key], `${key} is a declared setting`);
  }
});
