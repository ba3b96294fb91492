-- dg-lsp: code infilling from a text-diffusion model (https://github.com/... see docs/editors.md).
--
-- Enable with `vim.lsp.enable('dg_lsp')`; change anything with `vim.lsp.config('dg_lsp', {...})`,
-- e.g. `cmd = { '/path/to/venv/bin/dg-lsp', 'serve' }` or `settings = { dgLsp = { model = 'tiny' } }`.
-- `settings.dgLsp` is sent twice on purpose: as initializationOptions (so the server loads the
-- right model at start) and by Neovim itself as workspace/didChangeConfiguration.

---@type vim.lsp.Config
return {
  cmd = { 'dg-lsp', 'serve' },
  -- no `filetypes`: the server decides per language (dgLsp.enabledLanguages / disabledLanguages)
  root_markers = { '.git', 'pyproject.toml', 'package.json' },
  settings = { dgLsp = vim.empty_dict() },
  before_init = function(params, config)
    local s = config.settings and config.settings.dgLsp
    params.initializationOptions = { dgLsp = s or vim.empty_dict() }
  end,
  handlers = {
    ['dg/status'] = function(_, params, ctx)
      require('dg_lsp.status').update(ctx.client_id, params)
    end,
  },
}
