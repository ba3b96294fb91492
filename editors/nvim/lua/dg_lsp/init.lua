-- dg-lsp client functions: accept/dismiss ghost text, the server's commands, status for statuslines.
-- Nothing here needs to be called to set the plugin up: `vim.lsp.enable('dg_lsp')` is enough.
local api = vim.api
local M = {}

local ghost = require('dg_lsp.ghost')
local status = require('dg_lsp.status')

--- Whether Neovim's own inline completion (0.12+) draws the ghost text. Set
--- `vim.g.dg_lsp_builtin_inline_completion = false` to use this plugin's renderer instead.
function M.uses_builtin()
  return vim.lsp.inline_completion ~= nil and vim.g.dg_lsp_builtin_inline_completion ~= false
end

local function client_for(bufnr)
  return vim.lsp.get_clients({ name = 'dg_lsp', bufnr = bufnr })[1]
end

--- Called on LspAttach for dg_lsp clients.
function M.attach(client, bufnr)
  if not client:supports_method('textDocument/inlineCompletion', bufnr) then
    return -- the server decides; an old server without inline completion still gets commands
  end
  if M.uses_builtin() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    ghost.attach(client, bufnr)
  end
end

function M.detach(client, bufnr)
  ghost.detach(bufnr, client.id)
end

local AUTOMATIC, INVOKED = 2, 1

--- The built-in renderer's per-buffer state (0.12's Completor), or nil. Neovim exposes no call that
--- sends a request of a given trigger kind, so this reaches into `vim.lsp._capability`; without it
--- (a later Neovim that renames it) `next()` only cycles and a ready server is not re-asked.
local function builtin_completor(bufnr)
  local ok, capability = pcall(require, 'vim.lsp._capability')
  local class = ok and type(capability) == 'table' and type(capability.all) == 'table' and capability.all.inline_completion
  local completor = type(class) == 'table' and type(class.active) == 'table' and class.active[bufnr] or nil
  if type(completor) == 'table' and type(completor.request) == 'function' then
    return completor
  end
  return nil
end

--- Ask for inline completions at the cursor now (`kind` 1 = invoked, 2 = automatic). Returns
--- whether a request went out.
function M.request(kind, bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if M.uses_builtin() then
    local completor = builtin_completor(bufnr)
    if not completor then
      return false
    end
    completor:request(kind)
    return true
  end
  if not ghost.attached(bufnr) then
    return false
  end
  ghost.request(bufnr, kind)
  return true
end

--- The `dg/status` handler: record the state, and when the model has just become ready ask again at
--- the cursor (what was typed before got an empty answer from a server without a model).
function M.on_status(client_id, params)
  local before = status.by_client[client_id]
  status.update(client_id, params)
  if not status.became_ready(before, status.by_client[client_id]) then
    return
  end
  local bufnr = api.nvim_get_current_buf()
  local client = vim.lsp.get_client_by_id(client_id)
  if client and client.attached_buffers[bufnr] and api.nvim_get_mode().mode:sub(1, 1) == 'i'
      and not vim.b[bufnr].dg_lsp_disable and not vim.g.dg_lsp_disable then
    M.request(AUTOMATIC, bufnr)
  end
end

--- Accept the suggestion at the cursor. Returns false when there is none.
function M.accept()
  if M.uses_builtin() then
    return vim.lsp.inline_completion.get() or false
  end
  return ghost.accept()
end

--- Whether a suggestion is shown at the cursor (for `<Tab>`-style expr mappings).
function M.visible()
  if M.uses_builtin() then
    local bufnr = api.nvim_get_current_buf()
    local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
    return ns ~= nil and #api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
  end
  return ghost.visible()
end

function M.dismiss()
  if not M.uses_builtin() then
    ghost.clear()
  end
  -- the built-in client dismisses on its own (cursor moves, InsertLeave)
end

--- 0.12's renderer: cycle when it holds several items, else send the invoked request (several
--- suggestions) that its own `select()` never sends.
local function builtin_cycle(step)
  local bufnr = api.nvim_get_current_buf()
  local completor = builtin_completor(bufnr)
  local several = completor and completor.current ~= nil and type(completor.count_items) == 'function'
    and completor:count_items() > 1
  if completor and not several then
    if type(completor.reset_timer) == 'function' then
      completor:reset_timer() -- a debounced automatic request still pending would replace this one
    end
    completor:request(INVOKED)
  else
    vim.lsp.inline_completion.select({ count = step })
  end
end

--- Ask for suggestions now (invoked trigger: several items) or show the next one.
function M.next()
  if M.uses_builtin() then
    builtin_cycle(1)
  else
    ghost.cycle(nil, 1)
  end
end

function M.prev()
  if M.uses_builtin() then
    builtin_cycle(-1)
  else
    ghost.cycle(nil, -1)
  end
end

--- Statusline text ("dg ✓" ready, "dg …" loading, "dg ⋯" busy, "dg ✗" error, "" when detached).
--- Redraw on `User DgLspStatus`.
function M.status()
  return status.text()
end

--- The LSP range of lines `line1`..`line2` (1-based), or of the last visual selection when
--- `charwise`, in the client's position encoding.
---@return lsp.Range
function M.range(bufnr, line1, line2, charwise, enc)
  local function line_at(row)
    return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  end
  local function pos(row, byte)
    local line = line_at(row)
    byte = math.min(byte, #line)
    local ch = enc == 'utf-8' and byte or vim.str_utfindex(line, enc, byte, false)
    return { line = row, character = ch }
  end
  if charwise then
    local s, e = api.nvim_buf_get_mark(bufnr, '<'), api.nvim_buf_get_mark(bufnr, '>')
    local eline = line_at(e[1] - 1)
    local ecol = math.min(e[2], math.max(#eline - 1, 0))
    if vim.o.selection ~= 'exclusive' and #eline > 0 then
      ecol = ecol + vim.str_utf_end(eline, ecol + 1) + 1 -- include the whole last character
    end
    return { start = pos(s[1] - 1, s[2]), ['end'] = pos(e[1] - 1, ecol) }
  end
  return { start = pos(line1 - 1, 0), ['end'] = pos(line2 - 1, #line_at(line2 - 1)) }
end

--- Run a server command (workspace/executeCommand with one object argument).
---@param on_result? fun(result: any)
function M.execute(command, argument, bufnr, on_result)
  bufnr = bufnr or api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    vim.notify('dg-lsp: no dg_lsp client attached to this buffer (see :checkhealth dg_lsp)', vim.log.levels.WARN)
    return false
  end
  local params = { command = command, arguments = { argument } }
  client:request('workspace/executeCommand', params, function(err, result)
    if err then
      vim.notify(('dg-lsp: %s failed: %s'):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    if on_result then
      on_result(result)
    end
  end, bufnr)
  return true
end

--- Replace a range with what the model generates between its two sides (`:DgFillSelection`).
---@param opts? {line1?: integer, line2?: integer, charwise?: boolean, on_result?: fun(edit: table)}
function M.fill_selection(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return M.execute('dg.fillSelection', nil, bufnr) -- reports the missing client
  end
  local s, e = api.nvim_buf_get_mark(bufnr, '<'), api.nvim_buf_get_mark(bufnr, '>')
  local line1, line2 = opts.line1 or s[1], opts.line2 or e[1]
  local range = M.range(bufnr, line1, line2, opts.charwise, client.offset_encoding or 'utf-16')
  return M.execute('dg.fillSelection', { uri = vim.uri_from_bufnr(bufnr), range = range }, bufnr, opts.on_result)
end

--- Rewrite the prose of a Markdown buffer, or of lines `line1`..`line2` (`:DgRewriteMarkdown`).
---@param opts? {line1?: integer, line2?: integer, on_result?: fun(edit: table)}
function M.rewrite_markdown(opts)
  opts = opts or {}
  local bufnr = api.nvim_get_current_buf()
  local client = client_for(bufnr)
  local arg = { uri = vim.uri_from_bufnr(bufnr) }
  if client and opts.line1 then
    arg.range = M.range(bufnr, opts.line1, opts.line2 or opts.line1, false, client.offset_encoding or 'utf-16')
  end
  return M.execute('dg.rewriteMarkdown', arg, bufnr, opts.on_result)
end

--- Server statistics (latency, forwards per token, cache hits); printed when no callback is given.
---@param on_result? fun(stats: table)
function M.stats(on_result)
  return M.execute('dg.stats', vim.empty_dict(), nil, on_result or function(stats)
    local keys = vim.tbl_keys(stats or {})
    table.sort(keys)
    local lines = { 'dg-lsp stats' }
    for _, k in ipairs(keys) do
      lines[#lines + 1] = ('  %-24s %s'):format(k, vim.inspect(stats[k]))
    end
    vim.notify(table.concat(lines, '\n'), vim.log.levels.INFO)
  end)
end

return M
