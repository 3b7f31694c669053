"""`diffcli models` and the registry's refusal of broken or unsafe model folders."""

import json
import pickle

from helpers import make_tiny_model, run_cli


def test_list_json_is_valid_and_marks_the_default(home, no_builtin):
    make_tiny_model(home, "a")
    make_tiny_model(home, "b", cond="time")
    r = run_cli(["models", "list", "--json"])
    rows = r.json()
    assert r.code == 0 and [row["name"] for row in rows] == ["a", "b"]
    assert rows[0]["conditioning"] == "class" and rows[1]["conditioning"] == "time"
    assert not any(row["default"] for row in rows)  # two models and no choice yet: no default
    assert run_cli(["models", "default", "b"]).code == 0
    assert [row["default"] for row in run_cli(["models", "list", "--json"]).json()] == [False, True]
    assert run_cli(["models", "default"]).stdout.strip() == "b"


def test_list_table_and_show(home, no_builtin):
    make_tiny_model(home, "a")
    table = run_cli(["models", "list"]).stdout
    assert "NAME" in table and "unet/class" in table and "glyphs" in table
    shown = run_cli(["models", "show", "a", "--json"]).json()
    assert shown["config"]["schedule"]["timesteps"] == 50 and "model.safetensors" in shown["files"]
    assert "classes" in run_cli(["models", "show", "a"]).stdout


def test_path_rm_export_import_round_trip(home, no_builtin, tmp_path):
    make_tiny_model(home, "a")
    assert run_cli(["models", "path", "a"]).stdout.strip().endswith("models/a")
    zip_path = run_cli(["models", "export", "a", str(tmp_path)]).stdout.strip()
    assert zip_path.endswith("a.zip")
    r = run_cli(["models", "rm", "a"], stdin=b"")
    assert r.code == 2 and "--yes" in r.stderr
    assert run_cli(["models", "rm", "a", "--yes"]).code == 0
    assert run_cli(["models", "import", zip_path, "--name", "again"]).code == 0
    assert [row["name"] for row in run_cli(["models", "list", "--json"]).json()] == ["again"]
    r = run_cli(["models", "import", zip_path, "--name", "again"])
    assert r.code == 1 and "--force" in r.stderr


def test_unknown_model_lists_the_known_ones(home, no_builtin):
    make_tiny_model(home, "a")
    r = run_cli(["models", "show", "zzz"])
    assert r.code == 1 and "no model named 'zzz' (registered: a)" in r.stderr


def _load(home, name="tiny"):
    return run_cli(["denoise", "builtin:digit", "--model", name, "--method", "onestep", "-t", "5", "-o", "x.png"])


def test_missing_weights(home):
    folder = make_tiny_model(home)
    (folder / "model.safetensors").unlink()
    r = _load(home)
    assert r.code == 1 and "model 'tiny'" in r.stderr and "model.safetensors is missing" in r.stderr


def test_corrupt_weights(home):
    folder = make_tiny_model(home)
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    r = _load(home)
    assert r.code == 1 and "not a valid safetensors file" in r.stderr and "Traceback" not in r.stderr


def test_wrong_shapes(home):
    folder = make_tiny_model(home)
    config = json.loads((folder / "config.json").read_text())
    config["architecture"]["width"] = 16
    (folder / "config.json").write_text(json.dumps(config))
    r = _load(home)
    assert r.code == 1 and "do not fit the architecture" in r.stderr and "in the file" in r.stderr


def test_corrupt_config(home):
    folder = make_tiny_model(home)
    (folder / "config.json").write_text("{oops")
    r = _load(home)
    assert r.code == 1 and "not valid JSON" in r.stderr
    assert run_cli(["models", "list", "--json"]).json()[-1]["kind"] == "broken"


class Boom:
    def __reduce__(self):
        return (print, ("PWNED",))


def test_pickles_are_never_loaded(home, capfd):
    folder = make_tiny_model(home)
    (folder / "model.safetensors").unlink()
    (folder / "model.pt").write_bytes(pickle.dumps(Boom()))
    r = _load(home)
    assert r.code == 1 and "never unpickles" in r.stderr
    assert "PWNED" not in capfd.readouterr().out + r.stdout


def test_importing_a_pickle_folder_is_refused(home, tmp_path):
    src = tmp_path / "foreign"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"name": "foreign"}))
    (src / "model.pt").write_bytes(pickle.dumps(Boom()))
    r = run_cli(["models", "import", str(src)])
    assert r.code == 1 and "pickle" in r.stderr


def test_importing_weights_that_do_not_fit_registers_nothing(home, tmp_path, no_builtin):
    folder = make_tiny_model(home, "src")
    config = json.loads((folder / "config.json").read_text())
    config["architecture"]["width"] = 16
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({**config, "name": "bad"}))
    (bad / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    r = run_cli(["models", "import", str(bad)])
    assert r.code == 1 and "do not fit" in r.stderr
    assert [row["name"] for row in run_cli(["models", "list", "--json"]).json()] == ["src"]


def test_empty_registry(no_builtin):
    assert run_cli(["models", "list", "--json"]).json() == []
    r = run_cli(["models", "default"])
    assert r.code == 1 and "diffcli train" in r.stderr
