"""The Gradio latent-space explorer, built only on `core`'s public API (`core.load`, ...).

`explorer.app.build_app(...)` returns the Blocks app; `python app.py` serves it.
"""
