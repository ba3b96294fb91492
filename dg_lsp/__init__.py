"""dg-lsp: a language server for code infilling with a text-diffusion model."""

__version__ = "0.1.0"
