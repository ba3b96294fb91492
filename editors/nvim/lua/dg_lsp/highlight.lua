-- Ghost-text highlights that stay visible without 'termguicolors'. Neovim's default colour scheme
-- gives `Comment` (and 0.12's `ComplHint`, a link to `NonText`) a GUI colour only, so in a 256-colour
-- terminal the ghost text would look exactly like typed text.
local api = vim.api
local M = {}

--- cterm colour used when a group has none: mid grey, readable on dark and light backgrounds.
M.CTERM_GREY = 244

--- Whether `name` (links followed: its effective attributes) sets any cterm colour or attribute.
function M.has_cterm(name)
  local hl = api.nvim_get_hl(0, { name = name, link = false, create = false })
  return hl.ctermfg ~= nil or hl.ctermbg ~= nil or (hl.cterm ~= nil and next(hl.cterm) ~= nil)
end

--- `from`'s attributes (links followed) with a grey cterm foreground, for a group to be defined as.
function M.with_cterm_fallback(from)
  local hl = api.nvim_get_hl(0, { name = from, link = false, create = false })
  local out = vim.deepcopy(hl)
  out.ctermfg = M.CTERM_GREY
  out.default = true
  return out
end

--- Define DgLspGhostText and DgLspGhostHint (links when the target has cterm colours, else a copy
--- with a grey cterm foreground); give 0.12's ComplHint the same fallback when it has no cterm colour.
function M.define()
  for group, target in pairs({ DgLspGhostText = 'Comment', DgLspGhostHint = 'NonText' }) do
    if M.has_cterm(target) then
      api.nvim_set_hl(0, group, { link = target, default = true })
    else
      api.nvim_set_hl(0, group, M.with_cterm_fallback(target))
    end
  end
  -- vim.lsp.inline_completion draws with ComplHint; only a group that would be invisible is touched
  if vim.lsp.inline_completion and not M.has_cterm('ComplHint') then
    local hint = M.with_cterm_fallback('ComplHint')
    hint.default = nil -- ComplHint is a built-in default link, which `default` would not replace
    api.nvim_set_hl(0, 'ComplHint', hint)
  end
end

return M
