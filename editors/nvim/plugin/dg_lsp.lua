-- dg-lsp: commands, <Plug> mappings and the LspAttach hook. No default keymaps: map the
-- <Plug> names you want (see docs/editors.md).
if vim.g.loaded_dg_lsp or vim.fn.has('nvim-0.11') == 0 then
  return -- :checkhealth dg_lsp explains why on older versions
end
vim.g.loaded_dg_lsp = true

local api = vim.api

local group = api.nvim_create_augroup('dg_lsp', { clear = true })
require('dg_lsp.highlight').define()
-- `:colorscheme` clears every group first, so define them again (`default`: a scheme's own wins)
api.nvim_create_autocmd('ColorScheme', {
  group = group,
  callback = function()
    require('dg_lsp.highlight').define()
  end,
})
api.nvim_create_autocmd('LspAttach', {
  group = group,
  callback = function(ev)
    local client = vim.lsp.get_client_by_id(ev.data.client_id)
    if client and client.name == 'dg_lsp' then
      require('dg_lsp').attach(client, ev.buf)
    end
  end,
})
api.nvim_create_autocmd('LspDetach', {
  group = group,
  callback = function(ev)
    local client = vim.lsp.get_client_by_id(ev.data.client_id)
    if client and client.name == 'dg_lsp' then
      require('dg_lsp').detach(client, ev.buf)
      -- a buffer detaches and attaches again on `:e!`: keep the state until the client itself is gone
      local id = client.id
      vim.schedule(function()
        local c = vim.lsp.get_client_by_id(id)
        if not c or c:is_stopped() then
          require('dg_lsp.status').forget(id)
        end
      end)
    end
  end,
})

api.nvim_create_user_command('DgFillSelection', function(opts)
  -- charwise only when invoked from a `v` selection covering exactly these lines
  local s, e = api.nvim_buf_get_mark(0, '<'), api.nvim_buf_get_mark(0, '>')
  local charwise = opts.range == 2 and vim.fn.visualmode() == 'v' and s[1] == opts.line1 and e[1] == opts.line2
  require('dg_lsp').fill_selection({ line1 = opts.line1, line2 = opts.line2, charwise = charwise })
end, { range = true, desc = 'dg-lsp: regenerate the selected text from its surroundings' })

api.nvim_create_user_command('DgRewriteMarkdown', function(opts)
  require('dg_lsp').rewrite_markdown(opts.range > 0 and { line1 = opts.line1, line2 = opts.line2 } or {})
end, { range = true, desc = 'dg-lsp: rewrite the prose of this Markdown buffer (or of the range)' })

api.nvim_create_user_command('DgStats', function()
  require('dg_lsp').stats()
end, { desc = 'dg-lsp: latency, forwards per token, cache hit rate' })

local function plug(modes, name, rhs, desc)
  vim.keymap.set(modes, '<Plug>(' .. name .. ')', rhs, { silent = true, desc = desc })
end
plug('i', 'dg-lsp-accept', function()
  require('dg_lsp').accept()
end, 'dg-lsp: accept the suggestion')
plug('i', 'dg-lsp-dismiss', function()
  require('dg_lsp').dismiss()
end, 'dg-lsp: hide the suggestion')
plug('i', 'dg-lsp-next', function()
  require('dg_lsp').next()
end, 'dg-lsp: ask for / show the next suggestion')
plug('i', 'dg-lsp-prev', function()
  require('dg_lsp').prev()
end, 'dg-lsp: show the previous suggestion')
plug('x', 'dg-lsp-fill-selection', ':DgFillSelection<CR>', 'dg-lsp: fill the selection')
