"""Start the latent-space explorer: python app.py [--checkpoints DIR] [--data-dir DIR] [--port 7860]."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

START = time.perf_counter()
MAX_UPLOAD = "2mb"  # Gradio refuses larger uploads (the explorer takes none larger: a sentence file's cap)
# Browser sessions whose last inputs and outputs Gradio keeps in memory (its default, 10,000, let the
# server grow by ~0.25-6 MiB a call or visit); the oldest go first, a classroom's worth stays.
SESSIONS = 256


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoints", default="checkpoints", help="folder of checkpoint bundles (default: ./checkpoints)")
    p.add_argument("--data-dir", help="corpus folder (default: $VAE_MINE_DATA, else ./data)")
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="a corpus folder or file outside the data folder that a checkpoint was trained on (repeatable): "
        "the explorer reads a checkpoint's corpus path only when it is given here",
    )
    p.add_argument("--cache-dir", help="disk cache for indexes and maps (default: ~/.cache/vae-mine/explorer)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="PyTorch threads per request (default 1: requests are small, and run side by side)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it tried, line by line
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio's temporary files in a folder of this server's own, removed at exit: /tmp/gradio is shared by
    # every Gradio app on the machine, and Gradio serves any file in its temp folder
    private = tempfile.TemporaryDirectory(prefix="vae-mine-explorer-")
    os.environ["GRADIO_TEMP_DIR"] = private.name
    import torch

    torch.set_num_threads(args.threads)
    from starlette.middleware import Middleware

    from explorer.app import CSS, THEME, build_app, start_warm_up
    from explorer.guards import LinkGuard, RouteGuard

    app = build_app(args.checkpoints, args.data_dir, args.cache_dir, args.corpus)
    app.queue(default_concurrency_limit=4)
    try:
        # run_history off: Gradio would keep every call's inputs, a visitor's own sentences among them, in
        # the browser and list them at /gradio_api/runs for the next user of a shared computer
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            max_file_size=MAX_UPLOAD,
            run_history=False,
            state_session_capacity=SESSIONS,
            theme=THEME,
            css=CSS,
            app_kwargs={"middleware": [Middleware(LinkGuard), Middleware(RouteGuard)]},
        )
    except OSError as e:
        raise SystemExit(
            f"error: cannot serve on {args.host}:{args.port} ({e}); is another app using it? Try --port."
        ) from None
    start_warm_up(app)
    print(f"explorer ready at http://{args.host}:{args.port} in {time.perf_counter() - START:.1f} s", flush=True)
    app.block_thread()


if __name__ == "__main__":
    main()
