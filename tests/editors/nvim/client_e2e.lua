-- Headless end-to-end test of editors/nvim against the real server (run by tests/editors/test_nvim.py).
-- env: DG_PLUGIN (editors/nvim), DG_LSP_CMD (JSON list), DG_WORK (scratch folder), DG_OUT (report file).
-- Writes one "ok <check>" / "FAIL <reason>" line per step to DG_OUT and exits non-zero on failure.
local api, env = vim.api, vim.env
local out = {}
local function log(s)
  out[#out + 1] = s
  vim.fn.writefile(out, env.DG_OUT)
end
local function finish(code)
  vim.fn.writefile(out, env.DG_OUT)
  vim.cmd(code == 0 and 'qa!' or 'cq!')
end

vim.opt.rtp:prepend(env.DG_PLUGIN)
vim.cmd('runtime plugin/dg_lsp.lua')
vim.cmd('filetype on')
vim.o.swapfile = false
vim.g.dg_lsp_debounce_ms = 50
if env.DG_BUILTIN == '0' then
  vim.g.dg_lsp_builtin_inline_completion = false -- exercise the plugin's renderer on 0.12+
end
-- no model at first (a folder that does not exist: state `error`); step 1 switches to `tiny`
vim.lsp.config('dg_lsp', {
  cmd = vim.json.decode(env.DG_LSP_CMD),
  settings = { dgLsp = { model = env.DG_WORK .. '/no-model-here', threads = 1 } },
})
vim.lsp.enable('dg_lsp')
vim.o.termguicolors = false -- a 256-colour terminal: the ghost text must still differ from typed text

local dg = require('dg_lsp')
local ghost = require('dg_lsp.ghost')
local status = require('dg_lsp.status')
local co

local function sleep(ms)
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      log('FAIL ' .. tostring(err) .. '\n' .. debug.traceback(co))
      finish(1)
    end
  end, ms)
  coroutine.yield()
end

local function wait_for(what, timeout_ms, cond)
  local t0 = vim.uv.now()
  while true do
    local v = cond()
    if v then
      return v
    end
    if vim.uv.now() - t0 > timeout_ms then
      error('timed out waiting for ' .. what, 0)
    end
    sleep(25)
  end
end

local function check(cond, what, detail)
  if not cond then
    error(what .. (detail and (': ' .. vim.inspect(detail)) or ''), 0)
  end
  log('ok ' .. what)
end

local function feed(keys)
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), 'm', false)
end

local function marks(buf)
  local ns = dg.uses_builtin() and api.nvim_get_namespaces()['nvim.lsp.inline_completion'] or ghost.ns
  return ns and api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true }) or {}
end

local function write(path, lines)
  vim.fn.writefile(lines, path)
  return path
end

--- Record the requests of `method` that `client` sends (params, and the answer's item count).
local function spy(client, method)
  local seen, orig = {}, client.request
  client.request = function(self, m, params, handler, ...)
    if m ~= method then
      return orig(self, m, params, handler, ...)
    end
    local entry = { params = params }
    seen[#seen + 1] = entry
    return orig(self, m, params, function(err, result, ...)
      entry.answered, entry.n, entry.err = true, type(result) == 'table' and #(result.items or result) or 0, err
      if handler then
        return handler(err, result, ...)
      end
    end, ...)
  end
  return seen, function()
    client.request = orig
  end
end

--- The cterm foreground that highlight group `name` finally resolves to.
local function ctermfg(name)
  return api.nvim_get_hl(0, { name = name, link = false }).ctermfg
end

local function hint_of(mark)
  local d = mark[4]
  local chunks = vim.list_extend(vim.deepcopy(d.virt_text or {}), (d.virt_lines or {})[#(d.virt_lines or {})] or {})
  for _, c in ipairs(chunks) do
    local i, n = c[1]:match('%((%d+)/(%d+)%)')
    if i then
      return tonumber(i), tonumber(n)
    end
  end
end

local function steps()
  log('nvim ' .. tostring(vim.version()) .. (dg.uses_builtin() and ' builtin' or ' plugin') .. ' ghost text')

  -- 0. highlights: without 'termguicolors' the ghost text still has a colour of its own
  local ghost_group = dg.uses_builtin() and 'ComplHint' or 'DgLspGhostText'
  check(ctermfg(ghost_group) ~= nil and ctermfg(ghost_group) ~= ctermfg('Normal'),
    ghost_group .. ' has a cterm colour', api.nvim_get_hl(0, { name = ghost_group, link = false }))
  vim.cmd.colorscheme('default') -- clears every group: the plugin defines its own again
  check(ctermfg(ghost_group) ~= nil, ghost_group .. ' keeps its cterm colour after :colorscheme')

  -- 1. attach to a server without a model, type: nothing can come; the model becomes ready and the
  -- plugin asks again at the cursor without another keystroke
  vim.cmd.edit(write(env.DG_WORK .. '/area.py', { 'def area(r):', '    return 3.14 * ', '' }))
  local buf = api.nvim_get_current_buf()
  local client = wait_for('dg_lsp to attach', 20000, function()
    return vim.lsp.get_clients({ name = 'dg_lsp', bufnr = buf })[1]
  end)
  check(client.server_capabilities.inlineCompletionProvider ~= nil, 'server advertises inlineCompletionProvider')
  wait_for('dg/status error (no model)', 60000, function()
    local s = status.by_client[client.id]
    return s and s.state == 'error'
  end)
  check(status.became_ready({ state = 'loading' }, { state = 'ready' }) and status.became_ready(nil, { state = 'ready' })
    and not status.became_ready({ state = 'busy' }, { state = 'ready' }), 'only a model becoming ready re-asks')
  api.nvim_win_set_cursor(0, { 2, 0 })
  feed('A')
  feed('r')
  local function ghost_at_cursor()
    local ms = marks(buf)
    local cur = api.nvim_win_get_cursor(0)
    return #ms > 0 and ms[1][2] == cur[1] - 1 and ms[1][3] == cur[2] and ms[1]
  end
  local typed = wait_for('the typed character', 5000, function()
    return api.nvim_get_current_line() == '    return 3.14 * r' and api.nvim_buf_get_changedtick(buf)
  end)
  sleep(400) -- longer than either renderer's debounce: the request went out and came back empty
  check(#marks(buf) == 0, 'no ghost text before the model is ready', marks(buf))
  local settings = vim.deepcopy(client.settings)
  settings.dgLsp.model = 'tiny'
  client.settings = settings
  client:notify('workspace/didChangeConfiguration', { settings = settings })
  local mark = wait_for('ghost text once the model is ready', 30000, ghost_at_cursor)
  check(api.nvim_buf_get_changedtick(buf) == typed, 'ghost text after ready without another keystroke')
  check(vim.tbl_contains({ 'dg ✓', 'dg ⋯' }, dg.status()), 'statusline text', dg.status())

  -- 2. the ghost text from the server is drawn at the cursor, in the ghost highlight
  local d = mark[4]
  check(d.virt_text and d.virt_text[1][1] ~= '', 'ghost text extmark at the cursor', d.virt_text)
  check(d.virt_text[1][2] == ghost_group, 'ghost text drawn with ' .. ghost_group, d.virt_text)

  -- 3. moving the cursor dismisses it (a new one may only appear at the new position); 0.12's own
  -- client deliberately keeps stale text on screen until the new answer arrives
  feed('<Left>')
  sleep(10)
  local cur = api.nvim_win_get_cursor(0)
  if not dg.uses_builtin() then
    for _, m in ipairs(marks(buf)) do
      check(m[3] == cur[2], 'no ghost text left behind after a cursor move', m)
    end
    log('ok cursor move dismisses')
  end
  feed('<Right>')
  mark = wait_for('ghost text again', 30000, ghost_at_cursor)

  -- 4. cancel superseded requests (0.11 path only; 0.12's own client does its own)
  if not dg.uses_builtin() then
    local cancelled, orig = {}, client.cancel_request
    client.cancel_request = function(self, id)
      cancelled[#cancelled + 1] = id
      return orig(self, id)
    end
    ghost.request(buf, 2)
    ghost.request(buf, 2)
    client.cancel_request = orig
    check(#cancelled >= 1, 'a newer request cancels the older one', cancelled)
    mark = wait_for('ghost text after re-request', 30000, ghost_at_cursor)
  end

  -- 4b. <Plug>(dg-lsp-next) asks for several suggestions (invoked trigger), then cycles them
  local requests, unspy = spy(client, 'textDocument/inlineCompletion')
  feed('<Plug>(dg-lsp-next)')
  local invoked = wait_for('an invoked inline completion request', 10000, function()
    for _, r in ipairs(requests) do
      if r.params.context.triggerKind == 1 and r.answered then
        return r
      end
    end
  end)
  sleep(250) -- past 0.12's 200 ms debounce: an automatic request still pending would go out now
  unspy()
  check(true, '<Plug>(dg-lsp-next) sends an invoked request (' .. invoked.n .. ' items)')
  check(requests[#requests] == invoked, 'no automatic request after it replaces its answer', requests)
  mark = wait_for('ghost text after the invoked request', 30000, ghost_at_cursor)
  if invoked.n > 1 then
    feed('<Plug>(dg-lsp-next)')
    mark = wait_for('the second suggestion', 5000, function()
      local m = ghost_at_cursor()
      return m and hint_of(m) == 2 and m
    end)
    local i, n = hint_of(mark)
    check(i == 2 and n == invoked.n, '<Plug>(dg-lsp-next) again shows the next suggestion', { i, n })
  end

  -- 5. accept with <Plug>(dg-lsp-accept): the buffer gets exactly the shown text
  d = mark[4]
  local before = api.nvim_buf_get_lines(buf, 0, -1, false)
  local col = api.nvim_win_get_cursor(0)[2]
  local shown = { d.virt_text[1][1] }
  for _, vl in ipairs(d.virt_lines or {}) do
    shown[#shown + 1] = vl[1][1]
  end
  shown[#shown] = shown[#shown]:gsub(' %(%d+/%d+%)$', '')
  local tick = api.nvim_buf_get_changedtick(buf)
  feed('<Plug>(dg-lsp-accept)')
  wait_for('the accepted text in the buffer', 5000, function()
    return api.nvim_buf_get_changedtick(buf) ~= tick
  end)
  local after = api.nvim_buf_get_lines(buf, 0, -1, false)
  local expected = vim.deepcopy(before)
  local line2 = before[2]
  local head, rest = line2:sub(1, col), line2:sub(col + 1)
  local new = vim.deepcopy(shown)
  new[1] = head .. new[1]
  new[#new] = new[#new] .. rest
  table.remove(expected, 2)
  for i = #new, 1, -1 do
    table.insert(expected, 2, new[i])
  end
  check(vim.deep_equal(after, expected), 'accept inserts the ghost text', { before = before, shown = shown, after = after })
  cur = api.nvim_win_get_cursor(0)
  check(cur[1] == 1 + #new and cur[2] == #new[#new] - #rest, 'cursor after the accepted text', cur)

  -- 6. Escape leaves insert mode and clears any ghost text
  feed('<Esc>')
  wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)
  sleep(150)
  check(#marks(buf) == 0, 'Escape clears ghost text', marks(buf))

  -- 6b. :e! detaches and re-attaches the buffer: the status stays
  local attaches = 0
  local au = api.nvim_create_autocmd('LspAttach', { callback = function()
    attaches = attaches + 1
  end })
  vim.cmd('edit!')
  wait_for('dg_lsp to attach again after :e!', 10000, function()
    return attaches > 0 and vim.lsp.get_clients({ name = 'dg_lsp', bufnr = buf })[1]
  end)
  api.nvim_del_autocmd(au)
  sleep(50) -- past the LspDetach handler's scheduled check
  check(vim.tbl_contains({ 'dg ✓', 'dg ⋯' }, dg.status()) and status.by_client[client.id] ~= nil,
    'statusline keeps the state after :e!', dg.status())

  -- 7. fill a charwise visual selection through <Plug>(dg-lsp-fill-selection)
  vim.cmd.edit(write(env.DG_WORK .. '/add.py', { 'def add(a, b):', '    total = a + b', '    return total', '' }))
  buf = api.nvim_get_current_buf()
  wait_for('dg_lsp on the second buffer', 20000, function()
    return vim.lsp.get_clients({ name = 'dg_lsp', bufnr = buf })[1]
  end)
  api.nvim_win_set_cursor(0, { 2, 12 })
  tick = api.nvim_buf_get_changedtick(buf)
  feed('v4l<Plug>(dg-lsp-fill-selection)')
  wait_for('the filled selection', 30000, function()
    return api.nvim_buf_get_changedtick(buf) ~= tick
  end)
  local text = table.concat(api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
  local prefix, suffix = 'def add(a, b):\n    total = ', '\n    return total\n'
  check(
    text:sub(1, #prefix) == prefix and text:sub(-#suffix) == suffix and #text >= #prefix + #suffix,
    'fill selection replaces only the selection',
    text
  )
  check(vim.fn.visualmode() == 'v', 'selection was charwise')

  -- 8. :DgFillSelection on a line range (linewise)
  tick = api.nvim_buf_get_changedtick(buf)
  local n = api.nvim_buf_line_count(buf)
  local last = api.nvim_buf_get_lines(buf, n - 2, n, false)
  local first = api.nvim_buf_get_lines(buf, 0, 1, false)[1]
  local commands, unspy_cmd = spy(client, 'workspace/executeCommand')
  vim.cmd('1DgFillSelection')
  wait_for('the filled line', 30000, function()
    return api.nvim_buf_get_changedtick(buf) ~= tick
  end)
  unspy_cmd()
  local range = commands[1] and commands[1].params.arguments[1].range
  -- the line without its line break: a fill that adds a line break is the server's doing
  check(vim.deep_equal(range, { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = #first } }),
    ':1DgFillSelection sends line 1 without its line break', range)
  local now = api.nvim_buf_get_lines(buf, -3, -1, false)
  check(vim.deep_equal(now, last), ':DgFillSelection on a line keeps the other lines', { last, now })

  -- 9. :DgRewriteMarkdown keeps the document's structure
  vim.cmd.edit(write(env.DG_WORK .. '/notes.md', {
    '# Title', '', 'Some prose that the model may rewrite freely.', '', '```python', 'x = 1', '```', '',
  }))
  buf = api.nvim_get_current_buf()
  wait_for('dg_lsp on the Markdown buffer', 20000, function()
    return vim.lsp.get_clients({ name = 'dg_lsp', bufnr = buf })[1]
  end)
  tick = api.nvim_buf_get_changedtick(buf)
  vim.cmd('DgRewriteMarkdown')
  wait_for('the rewritten Markdown', 30000, function()
    return api.nvim_buf_get_changedtick(buf) ~= tick
  end)
  local md = api.nvim_buf_get_lines(buf, 0, -1, false)
  check(md[1]:sub(1, 2) == '# ' and vim.tbl_contains(md, '```python') and vim.tbl_contains(md, 'x = 1'),
    ':DgRewriteMarkdown keeps headings and code', md)

  -- 10. :DgStats (server counted the accepted completion)
  local stats
  dg.stats(function(s)
    stats = s
  end)
  wait_for('dg.stats', 10000, function()
    return stats
  end)
  check(type(stats) == 'table' and (stats.accepted or 0) >= 1, 'dg.stats counts the accepted completion', stats)

  -- 11. :checkhealth dg_lsp
  vim.cmd('checkhealth dg_lsp')
  local report = table.concat(api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  check(report:find('dg_lsp', 1, true) ~= nil and report:find('OK', 1, true) ~= nil, 'checkhealth runs', report)
  check(report:find('ERROR', 1, true) == nil, 'checkhealth has no errors', report)
  check(report:find('state ready', 1, true) ~= nil or report:find('state busy', 1, true) ~= nil,
    'checkhealth knows the client state', report)
  log('DONE')
  finish(0)
end

co = coroutine.create(steps)
vim.defer_fn(function()
  log('FAIL overall timeout')
  finish(1)
end, tonumber(env.DG_TIMEOUT_MS) or 100000)
vim.schedule(function()
  local ok, err = coroutine.resume(co)
  if not ok then
    log('FAIL ' .. tostring(err))
    finish(1)
  end
end)
