-- Server state from the `dg/status` notification ({state, message}), per client.
local M = {}

---@type table<integer, {state: string, message: string}>
M.by_client = {}

local ICON = { loading = '…', ready = '✓', busy = '⋯', error = '✗' }

---@param client_id integer
---@param params {state: string, message: string}
function M.update(client_id, params)
  if type(params) ~= 'table' or type(params.state) ~= 'string' then
    return
  end
  M.by_client[client_id] = { state = params.state, message = params.message or '' }
  if params.state == 'error' then
    vim.notify('dg-lsp: ' .. (params.message or 'error'), vim.log.levels.ERROR)
  end
  -- statuslines listen for this to redraw; `data` carries the new state
  vim.api.nvim_exec_autocmds('User', { pattern = 'DgLspStatus', data = M.by_client[client_id], modeline = false })
end

--- Whether a change from `before` to `after` is the model becoming ready (after start, a reload or an
--- error), as opposed to the end of a busy spell, which must not trigger a new request.
---@param before? {state: string}
---@param after? {state: string}
function M.became_ready(before, after)
  return after ~= nil and after.state == 'ready' and not (before and (before.state == 'ready' or before.state == 'busy'))
end

function M.forget(client_id)
  M.by_client[client_id] = nil
end

--- The state of the dg_lsp client attached to `bufnr` (or of any dg_lsp client), or nil.
---@param bufnr? integer
---@return {state: string, message: string}|nil
function M.get(bufnr)
  for _, client in ipairs(vim.lsp.get_clients({ name = 'dg_lsp', bufnr = bufnr })) do
    if M.by_client[client.id] then
      return M.by_client[client.id]
    end
  end
  return nil
end

--- A short text for statuslines: "dg ✓", "dg …" (loading), "dg ⋯" (busy), "dg ✗" (error), or "".
---@param bufnr? integer
---@return string
function M.text(bufnr)
  local s = M.get(bufnr or vim.api.nvim_get_current_buf())
  if not s then
    return ''
  end
  return 'dg ' .. (ICON[s.state] or s.state)
end

return M
