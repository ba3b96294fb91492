-- :checkhealth dg_lsp
local M = {}

function M.check()
  local h = vim.health
  h.start('dg_lsp: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.11') == 0 then
    h.error('Neovim ' .. version .. ' is too old', 'dg_lsp needs Neovim 0.11 (vim.lsp.config / vim.lsp.enable)')
    return
  end
  h.ok('Neovim ' .. version)
  local dg = require('dg_lsp')
  if dg.uses_builtin() then
    h.ok('ghost text: Neovim\'s vim.lsp.inline_completion')
  elseif vim.lsp.inline_completion then
    h.ok('ghost text: this plugin (vim.g.dg_lsp_builtin_inline_completion = false)')
  else
    h.ok('ghost text: this plugin (Neovim < 0.12 has no vim.lsp.inline_completion)')
  end

  h.start('dg_lsp: server')
  local ok, config = pcall(function()
    return vim.lsp.config.dg_lsp
  end)
  if not ok or type(config) ~= 'table' or not config.cmd then
    h.error('no `dg_lsp` config found', 'put editors/nvim on your runtimepath (it holds lsp/dg_lsp.lua)')
    return
  end
  local enabled = vim.lsp.is_enabled and vim.lsp.is_enabled('dg_lsp')
    or (vim.lsp._enabled_configs and vim.lsp._enabled_configs.dg_lsp ~= nil)
  if enabled then
    h.ok("enabled (vim.lsp.enable('dg_lsp'))")
  else
    h.warn('not enabled', "call vim.lsp.enable('dg_lsp') in your config")
  end
  if type(config.cmd) == 'table' then
    local exe = config.cmd[1]
    local path = vim.fn.exepath(exe)
    if path ~= '' then
      h.ok(('server command: %s (%s)'):format(table.concat(config.cmd, ' '), path))
    else
      h.error(
        ('server executable %q not found'):format(exe),
        {
          'install dg-lsp from its clone (it is not on PyPI yet): pip install -e /path/to/dg-lsp in a virtualenv,'
            .. ' and put its bin/ on PATH',
          "or vim.lsp.config('dg_lsp', { cmd = { '/path/to/venv/bin/dg-lsp', 'serve' } })",
        }
      )
    end
  else
    h.info('server command is a function (custom transport)')
  end
  local settings = config.settings and config.settings.dgLsp
  h.info('settings.dgLsp: ' .. vim.inspect(settings or {}, { newline = ' ', indent = '' }))

  h.start('dg_lsp: clients')
  local clients = vim.lsp.get_clients({ name = 'dg_lsp' })
  if #clients == 0 then
    h.info('no dg_lsp client running (open a file to start one)')
  end
  local status = require('dg_lsp.status')
  for _, client in ipairs(clients) do
    local s = status.by_client[client.id]
    local line = ('client %d: %d buffer(s), state %s'):format(
      client.id,
      vim.tbl_count(client.attached_buffers),
      s and (s.state .. ' (' .. s.message .. ')') or 'unknown'
    )
    if s and s.state == 'error' then
      h.error(line, 'see :LspLog, or the server log (dg-lsp serve --log-file FILE)')
    else
      h.ok(line)
    end
    if not client.server_capabilities.inlineCompletionProvider then
      h.warn('server does not advertise inlineCompletionProvider: no ghost text')
    end
  end
end

return M
