"""The Gradio latent-space explorer, built only on `core`'s public API: the names `core` exports
(`core.load`, ...) and `core.serving.lab.live_training`, the classroom's live training.

`explorer.app.build_app(...)` returns the Blocks app; `python app.py` serves it.
"""
