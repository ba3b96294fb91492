-- Ghost text for Neovim 0.11, which has no `vim.lsp.inline_completion`: request
-- textDocument/inlineCompletion while typing, draw the first item with extmarks, accept or dismiss it.
-- One state per buffer; a newer request cancels the older one (the server also drops superseded work).
local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace('dg_lsp.ghost')
local METHOD = 'textDocument/inlineCompletion'
local AUTOMATIC, INVOKED = 2, 1

---@class dg_lsp.Shown
---@field client_id integer
---@field items table[] the server's items
---@field index integer the item on screen
---@field row integer 0-based cursor row when requested
---@field col integer byte column of the cursor
---@field tick integer b:changedtick when requested

---@class dg_lsp.GhostState
---@field client_id integer
---@field timer? uv.uv_timer_t
---@field request_id? integer
---@field shown? dg_lsp.Shown
---@field augroup integer

---@type table<integer, dg_lsp.GhostState>
local states = {}

local function debounce_ms()
  return tonumber(vim.g.dg_lsp_debounce_ms) or 75
end

local function text_of(item)
  local t = item.insertText
  if type(t) == 'table' then
    -- snippet: show placeholders' default text, drop tab stops
    return (t.value:gsub('%${%d+:([^}]*)}', '%1'):gsub('%$%d+', ''))
  end
  return t or ''
end

--- Byte column in `line` of an LSP character offset in `enc`.
local function byte_col(line, character, enc)
  if enc == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, b = pcall(vim.str_byteindex, line, enc, character, false)
  return ok and math.min(b, #line) or #line
end

local function char_col(line, byte, enc)
  if enc == 'utf-8' then
    return byte
  end
  return vim.str_utfindex(line, enc, math.min(byte, #line), false)
end

local function stop_timer(st)
  if st.timer then
    st.timer:stop()
    st.timer:close()
    st.timer = nil
  end
end

local function cancel(st)
  stop_timer(st)
  if st.request_id then
    local client = vim.lsp.get_client_by_id(st.client_id)
    if client then
      client:cancel_request(st.request_id)
    end
    st.request_id = nil
  end
end

--- Remove the ghost text of `bufnr` (it stays requestable).
function M.clear(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local st = states[bufnr]
  if st then
    st.shown = nil
  end
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

--- The shown item's replacement: byte range on the cursor line and the full text, or nil when it
--- no longer fits the buffer.
local function replacement(bufnr, shown)
  local item = shown.items[shown.index]
  local client = vim.lsp.get_client_by_id(shown.client_id)
  if not item or not client then
    return nil
  end
  local line = api.nvim_buf_get_lines(bufnr, shown.row, shown.row + 1, false)[1] or ''
  local enc = client.offset_encoding or 'utf-16'
  local first, last = shown.col, shown.col
  if item.range then
    local r = item.range
    if r.start.line ~= shown.row or r['end'].line ~= shown.row then
      return nil -- the spec keeps ranges on one line; anything else is not for this cursor
    end
    first, last = byte_col(line, r.start.character, enc), byte_col(line, r['end'].character, enc)
  end
  if first > shown.col or last < shown.col then
    return nil
  end
  return { line = line, first = first, last = last, text = text_of(item), item = item }
end

local function draw(bufnr, shown)
  local rep = replacement(bufnr, shown)
  if not rep then
    return false
  end
  -- what the user already typed inside the range must be a prefix of the item
  local typed = rep.line:sub(rep.first + 1, shown.col)
  if rep.text:sub(1, #typed) ~= typed then
    return false
  end
  local ghost = rep.text:sub(#typed + 1)
  -- characters right of the cursor that the item replaces (auto-closed brackets): don't show twice
  local tail = rep.line:sub(shown.col + 1, rep.last)
  if tail ~= '' and ghost:sub(-#tail) == tail then
    ghost = ghost:sub(1, #ghost - #tail)
  end
  if ghost == '' then
    return false
  end
  local lines = vim.split(ghost, '\n', { plain = true })
  local hint = #shown.items > 1 and { { (' (%d/%d)'):format(shown.index, #shown.items), 'DgLspGhostHint' } } or nil
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'DgLspGhostText' } }
  end
  local opts = {
    virt_text = { { lines[1], 'DgLspGhostText' } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
  }
  if #virt_lines > 0 then
    opts.virt_lines = virt_lines
    if hint then
      table.insert(virt_lines[#virt_lines], hint[1])
    end
  elseif hint then
    table.insert(opts.virt_text, hint[1])
  end
  api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  api.nvim_buf_set_extmark(bufnr, M.ns, shown.row, shown.col, opts)
  return true
end

local function cursor_is(bufnr, row, col, tick)
  if api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  local cur = api.nvim_win_get_cursor(0)
  return cur[1] - 1 == row and cur[2] == col and api.nvim_buf_get_changedtick(bufnr) == tick
end

--- Ask the server for items at the cursor; `kind` 1 = invoked (several items), 2 = automatic.
function M.request(bufnr, kind)
  bufnr = bufnr or api.nvim_get_current_buf()
  local st = states[bufnr]
  local client = st and vim.lsp.get_client_by_id(st.client_id)
  if not client or api.nvim_get_current_buf() ~= bufnr then
    return
  end
  cancel(st)
  local cur = api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local line = api.nvim_get_current_line()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = char_col(line, col, client.offset_encoding or 'utf-16') },
    context = { triggerKind = kind or AUTOMATIC },
  }
  local ok, id
  ok, id = client:request(METHOD, params, function(err, result)
    if st.request_id ~= id then
      return -- superseded (a cancelled request may still answer)
    end
    st.request_id = nil
    if err or not result or not cursor_is(bufnr, row, col, tick) then
      return
    end
    local items = result.items or result
    if type(items) ~= 'table' or #items == 0 then
      return
    end
    local shown = { client_id = client.id, items = items, index = 1, row = row, col = col, tick = tick }
    if draw(bufnr, shown) then
      st.shown = shown
    end
  end, bufnr)
  st.request_id = ok and id or nil
end

--- Debounced automatic request (typing, cursor moves in insert mode).
local function schedule(bufnr)
  local st = states[bufnr]
  if not st or vim.b[bufnr].dg_lsp_disable or vim.g.dg_lsp_disable then
    return
  end
  cancel(st)
  st.timer = vim.uv.new_timer()
  st.timer:start(
    debounce_ms(),
    0,
    vim.schedule_wrap(function()
      stop_timer(st)
      if states[bufnr] == st and api.nvim_get_mode().mode:sub(1, 1) == 'i' then
        M.request(bufnr, AUTOMATIC)
      end
    end)
  )
end

--- Whether ghost text is on screen at the cursor.
function M.visible(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local st = states[bufnr]
  local s = st and st.shown
  return s ~= nil and cursor_is(bufnr, s.row, s.col, s.tick)
end

--- Insert the shown item; false when nothing is shown (so a mapping can fall back).
function M.accept(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if not M.visible(bufnr) then
    return false
  end
  local st = states[bufnr]
  local shown = assert(st.shown)
  local rep = replacement(bufnr, shown)
  M.clear(bufnr)
  cancel(st)
  if not rep then
    return false
  end
  local item = rep.item
  if type(item.insertText) == 'table' and item.insertText.kind == 'snippet' then
    api.nvim_buf_set_text(bufnr, shown.row, rep.first, shown.row, rep.last, { '' })
    api.nvim_win_set_cursor(0, { shown.row + 1, rep.first })
    vim.snippet.expand(item.insertText.value)
  else
    local lines = vim.split(rep.text, '\n', { plain = true })
    api.nvim_buf_set_text(bufnr, shown.row, rep.first, shown.row, rep.last, lines)
    local end_col = (#lines == 1 and rep.first or 0) + #lines[#lines]
    api.nvim_win_set_cursor(0, { shown.row + #lines, end_col })
  end
  local client = vim.lsp.get_client_by_id(shown.client_id)
  if client and item.command then
    client:exec_cmd(item.command, { bufnr = bufnr })
  end
  return true
end

--- Show the next (or previous, `step` = -1) item; asks the server for several items (invoked
--- trigger) when only one is known.
function M.cycle(bufnr, step)
  bufnr = bufnr or api.nvim_get_current_buf()
  local st = states[bufnr]
  if not st then
    return
  end
  local s = st.shown
  if not s or #s.items < 2 or not M.visible(bufnr) then
    M.request(bufnr, INVOKED)
    return
  end
  s.index = (s.index - 1 + (step or 1)) % #s.items + 1
  draw(bufnr, s)
end

function M.attach(client, bufnr)
  if states[bufnr] then
    return
  end
  local group = api.nvim_create_augroup('dg_lsp.ghost.' .. bufnr, { clear = true })
  states[bufnr] = { client_id = client.id, augroup = group }
  api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      -- any edit or cursor move makes the shown item stale: drop it and ask again
      if M.visible(bufnr) then
        return
      end
      M.clear(bufnr)
      schedule(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      local st = states[bufnr]
      if st then
        cancel(st)
      end
      M.clear(bufnr)
    end,
  })
end

function M.detach(bufnr, client_id)
  local st = states[bufnr]
  if not st or (client_id and st.client_id ~= client_id) then
    return
  end
  cancel(st)
  M.clear(bufnr)
  pcall(api.nvim_del_augroup_by_id, st.augroup)
  states[bufnr] = nil
end

function M.attached(bufnr)
  return states[bufnr or api.nvim_get_current_buf()] ~= nil
end

return M
