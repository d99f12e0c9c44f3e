"""quadlit.outputs: which existing files a command may replace, and atomic writes."""

import json

import pytest

from quadlit.errors import ConfigError
from quadlit.outputs import atomic_write, check_output_file, holds_image, json_result


def test_only_a_result_of_the_same_command_may_be_replaced(tmp_path):
    earlier, other, notes = tmp_path / "earlier.json", tmp_path / "other.json", tmp_path / "notes.json"
    earlier.write_text(json.dumps({"records": [], "extra": 1}))
    other.write_text(json.dumps({"sb3": [], "quadlit": []}))  # another benchmark's result
    notes.write_text('{"mine": true}')
    is_train_result = json_result("records")
    assert check_output_file(earlier, "--json", rewritable=is_train_result) == earlier
    for path in (other, notes):
        with pytest.raises(ConfigError, match=f"--json: {path} already exists and was not written by this command"):
            check_output_file(path, "--json", rewritable=is_train_result)
    assert check_output_file(tmp_path / "new.json", "--json") == tmp_path / "new.json"
    with pytest.raises(ConfigError, match="is this command's input"):
        check_output_file(tmp_path / "new.json", "--out", inputs=[tmp_path / "." / "new.json"])


def test_images_are_told_by_their_first_bytes(tmp_path):
    png, gif, text = tmp_path / "a.png", tmp_path / "a.gif", tmp_path / "b.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n....")
    gif.write_bytes(b"GIF89a....")
    text.write_text("not an image")
    assert holds_image(png) and holds_image(gif) and not holds_image(text) and not holds_image(tmp_path / "none")


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "sub" / "result.json"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".json"  # writers choose formats by suffix
        tmp.write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half of the second")
            raise RuntimeError("disk full")
    assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["result.json"]
