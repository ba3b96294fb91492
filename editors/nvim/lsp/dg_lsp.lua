-- dg-lsp: code infilling from a text-diffusion model (docs/editors.md in the dg-lsp repository).
--
-- Enable with `vim.lsp.enable('dg_lsp')`; change anything with `vim.lsp.config('dg_lsp', {...})`,
-- e.g. `cmd = { '/path/to/venv/bin/dg-lsp', 'serve' }` or `settings = { dgLsp = { model = 'tiny' } }`.
-- `settings.dgLsp` is sent twice on purpose: as initializationOptions (so the server loads the
-- right model at start) and by Neovim itself as workspace/didChangeConfiguration. The server
-- replaces its settings on each push, so keys given in `init_options.dgLsp` are merged into
-- `settings.dgLsp` (settings win) rather than lost on the first push.

---@type vim.lsp.Config
return {
  -- stderr lands in Neovim's lsp.log, where every line shows as [ERROR]: warnings only
  cmd = { 'dg-lsp', 'serve', '--log-level', 'WARNING' },
  -- no `filetypes`: the server decides per language (dgLsp.enabledLanguages / disabledLanguages)
  root_markers = { '.git', 'pyproject.toml', 'package.json' },
  settings = { dgLsp = vim.empty_dict() },
  before_init = function(params, config)
    local init = type(config.init_options) == 'table' and config.init_options.dgLsp or nil
    local merged = vim.tbl_deep_extend('force', vim.empty_dict(), init or {}, (config.settings or {}).dgLsp or {})
    if next(merged) == nil then
      merged = vim.empty_dict() -- JSON {} rather than []
    end
    config.settings = config.settings or {}
    config.settings.dgLsp = merged -- the same table Neovim pushes after `initialized`
    params.initializationOptions = { dgLsp = merged }
  end,
  handlers = {
    ['dg/status'] = function(_, params, ctx)
      require('dg_lsp').on_status(ctx.client_id, params)
    end,
  },
}
