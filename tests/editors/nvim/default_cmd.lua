-- The plugin's own server command (lsp/dg_lsp.lua's `cmd`, `dg-lsp` found on PATH): type until ghost
-- text shows, then quit with `:qa!` as a user does. Run by tests/editors/test_nvim.py, which then reads
-- Neovim's lsp.log and checks that the server ended. env: DG_PLUGIN, DG_WORK, DG_OUT.
local api, env = vim.api, vim.env
local function finish(lines, code)
  vim.fn.writefile(lines, env.DG_OUT)
  vim.cmd(code == 0 and 'qa!' or 'cq!')
end

vim.opt.rtp:prepend(env.DG_PLUGIN)
vim.cmd('runtime plugin/dg_lsp.lua')
vim.cmd('filetype on')
vim.o.swapfile = false
vim.g.dg_lsp_debounce_ms = 50
vim.lsp.config('dg_lsp', { settings = { dgLsp = { model = 'tiny', threads = 1 } } }) -- `cmd` left as shipped
vim.lsp.enable('dg_lsp')
vim.fn.writefile({ 'def area(r):', '    return 3.14 * ', '' }, env.DG_WORK .. '/area.py')
vim.cmd.edit(env.DG_WORK .. '/area.py')

local dg, t0, typed = require('dg_lsp'), vim.uv.now(), false
local function poll()
  if vim.uv.now() - t0 > 60000 then
    return finish({ 'FAIL timed out (status ' .. dg.status() .. ', typed ' .. tostring(typed) .. ')' }, 1)
  end
  if not typed and dg.status() == 'dg ✓' then
    typed = true
    api.nvim_win_set_cursor(0, { 2, 0 })
    api.nvim_feedkeys('Ar', 'n', false)
  elseif typed and dg.visible() then
    return finish({ 'ok ghost text with the default command', 'DONE' }, 0)
  end
  vim.defer_fn(poll, 25)
end
poll()
