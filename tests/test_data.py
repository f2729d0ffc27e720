"""`python -m core.data get` against a real HTTP server on 127.0.0.1 serving small files made here
(and, for the end-to-end PTB check, the real PTB files from the data folder)."""

from __future__ import annotations

import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.commands import data
from core.library.errors import CorpusError

LINES = "the lighthouse keeper counted gulls\na paper boat drifted past the pier\nnobody answered the blue door\n"


class Handler(SimpleHTTPRequestHandler):
    """Files of a folder; /cut/NAME sends a tenth of NAME's bytes after promising all of them."""

    def do_GET(self):
        if self.path.startswith("/cut/"):
            body = (Path(self.directory) / self.path[len("/cut/") :]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 10])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of a local server for that folder; stopped after the test."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def mini_source(folder: Path) -> data.Source:
    """A three-file corpus of invented sentences, laid out as a mirror serves it."""
    folder.mkdir()
    files = {}
    for i, split in enumerate(("train", "valid", "test")):
        text = (LINES * (50 if split == "train" else 5) + f"split {i}\n").encode()
        (folder / f"mini.{split}.txt").write_bytes(text)
        files[f"{split}.txt"] = (f"mini.{split}.txt", hashlib.sha256(text).hexdigest())
    return data.Source("mini", "invented for this test", "http://127.0.0.1:9/never-used/", files)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_good_download_lands_checked_and_is_not_fetched_twice(tmp_path, serve, capsys):
    source = mini_source(tmp_path / "mirror")
    base = serve(tmp_path / "mirror")
    out = data.fetch(source, tmp_path / "data" / "mini", base, progress=True)
    assert leftovers(out) == ["test.txt", "train.txt", "valid.txt"]
    assert (out / "train.txt").read_bytes() == (tmp_path / "mirror" / "mini.train.txt").read_bytes()
    (tmp_path / "mirror" / "mini.valid.txt").unlink()  # a second run needs no server for files already checked
    data.fetch(source, out, base)
    assert capsys.readouterr().err.count("present, sha256 checked") == 3


def test_a_corrupted_download_writes_nothing_and_keeps_what_was_there(tmp_path, serve, capsys):
    mirror = tmp_path / "mirror"
    mini_source(mirror)
    for split in ("train", "valid", "test"):  # invented text under PTB's names: not PTB's sha256
        (mirror / f"ptb.{split}.txt").write_bytes((mirror / f"mini.{split}.txt").read_bytes())
    (tmp_path / "data" / "ptb").mkdir(parents=True)
    (tmp_path / "data" / "ptb" / "train.txt").write_text("an older file of mine\n")
    rc = data.main(["get", "ptb", "--url", serve(mirror), "--data-dir", str(tmp_path / "data"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "ptb.train.txt is not the expected file (sha256" in err and "nothing was written" in err
    assert "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf" in err
    assert leftovers(tmp_path / "data" / "ptb") == ["train.txt"]
    assert (tmp_path / "data" / "ptb" / "train.txt").read_text() == "an older file of mine\n"


def test_an_interrupted_download_says_so_and_writes_nothing(tmp_path, serve):
    source = mini_source(tmp_path / "mirror")
    with pytest.raises(CorpusError, match=r"interrupted after [0-9,]+ of [0-9,]+ bytes; nothing was written"):
        data.fetch(source, tmp_path / "data" / "mini", serve(tmp_path / "mirror") + "cut/", progress=False)
    assert leftovers(tmp_path / "data" / "mini") == []


def test_a_missing_file_and_an_unreachable_host_are_named(tmp_path, serve):
    source = mini_source(tmp_path / "mirror")
    with pytest.raises(CorpusError, match=r"cannot download http://127.0.0.1:\d+/elsewhere/mini.train.txt: HTTP 404"):
        data.fetch(source, tmp_path / "data" / "mini", serve(tmp_path / "mirror") + "elsewhere/", progress=False)
    with pytest.raises(CorpusError, match=r"cannot reach http://127.0.0.1:9/.*--url BASE"):
        data.fetch(source, tmp_path / "data" / "mini", "http://127.0.0.1:9/", progress=False)
    assert not (tmp_path / "data" / "mini").exists()  # no empty corpus folder left to be listed
    assert data.main(["get", "ptb", "--data-dir", str(tmp_path / "data"), "--url", "http://127.0.0.1:9/"]) == 2
    assert not (tmp_path / "data" / "ptb").exists()


def test_corpora_that_cannot_be_fetched_say_where_licence_and_layout(tmp_path, capsys):
    assert data.main(["get", "flickr8k", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "flickr8k cannot be downloaded" in err and "Licence: Flickr8k" in err and "flickr8k/train.txt" in err
    assert data.main(["get", "wikitext", "--data-dir", str(tmp_path)]) == 2
    assert "no source known for corpus 'wikitext'" in capsys.readouterr().err
    assert data.main(["list", "--data-dir", str(tmp_path)]) == 0
    assert "ptb        missing  python -m core.data get ptb" in capsys.readouterr().out


def test_get_ptb_end_to_end_from_a_local_mirror_of_the_real_files(tmp_path, serve, corpora, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split in ("train", "valid", "test"):  # the mirror's names are the simple-examples ones
        (mirror / f"ptb.{split}.txt").symlink_to(corpora / "ptb" / f"{split}.txt")
    monkeypatch.setenv("VAE_MINE_DATA_URL", serve(mirror))
    assert data.main(["get", "ptb", "--data-dir", str(tmp_path / "data"), "--no-progress"]) == 0
    for split in ("train", "valid", "test"):
        got = tmp_path / "data" / "ptb" / f"{split}.txt"
        assert got.read_bytes() == (corpora / "ptb" / f"{split}.txt").read_bytes()
    assert leftovers(tmp_path / "data" / "ptb") == ["test.txt", "train.txt", "valid.txt"]
