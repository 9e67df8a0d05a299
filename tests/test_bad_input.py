"""Bad input, one row per case: every chapter's parameters
and the runner's and sweep's options are checked before a kernel starts or a job is submitted (exit
status 2, one line that names it); a stored record that is unreadable or another run's is missing
with a warning naming the file; a dataset folder's SHA256SUMS and files are checked before anything
trains. The repository setting and check_versions have theirs in test_repository.py and
test_check_versions.py."""

import dataclasses
import os
from pathlib import Path

import pytest

from bn_utils.book import run

# (chapter, [NAME, VALUE, ...], expected text of the one-line error)
TABLE = [
    ("01", ["steps", "0"], "parameter steps=0 must be >= 1"),
    ("01", ["lr", "-1"], "parameter lr=-1.0 must be >= 1e-06"),
    ("01", ["activation", "softmax"], "parameter activation='softmax' is not allowed"),
    ("01", ["layer", "two"], "parameter layer='two' should be of type int"),
    ("01", ["seed", "100000000000000000000"], "parameter seed=100000000000000000000 must be <= 4294967295"),
    ("01", ["seed", "10**20"], "parameter seed='10**20' should be of type int"),
    ("02", ["batch_size", "1"], "parameter batch_size=1 must be >= 2"),
    ("02", ["bug_lr", "1e9"], "parameter bug_lr=1000000000.0 must be <= 100.0"),
    ("02", ["steps", "2.5"], "parameter steps=2.5 should be of type int"),
    ("03", ["timing_shape", "1,4096"], "parameter timing_shape=(1, 4096) must be >= 2"),
    ("03", ["seed", "-1"], "parameter seed=-1 must be >= 0"),
    ("04", ["seeds", "0,0"], "parameters activations and seeds must not repeat a value"),
    ("04", ["seeds", "(0, 4294967296)"], "parameter seeds=(0, 4294967296) must be <= 4294967295"),
    ("04", ["activations", "relu"], "must include 'sigmoid'"),
    ("04", ["activations", "sigmoid,softmax"], "parameter activations=('sigmoid', 'softmax') is not allowed"),
    ("04", ["init", "zeros"], "parameter init='zeros' is not allowed"),
    ("04", ["lr", "nan"], "parameter lr='nan' should be of type float"),
    ("05", ["rows", "BN-x100"], "parameter rows=('BN-x100',) is not allowed"),
    ("05", ["n_train", "10"], "parameter n_train=10 must be >= 64"),
    ("05", ["seeds", "[]"], "parameter seeds=() must not be empty"),
    ("05", ["lr_scale", "1e6"], "parameter lr_scale=1000000.0 must be <= 1000.0"),
    ("05", ["epochs_bn", "100000"], "parameter epochs_bn=100000 must be <= 10000"),
    ("05", ["batch_size", "1e6"], "parameter batch_size=1000000 must be <= 65536"),
    ("05", ["width", "100000"], "parameter width=100000 must be <= 16384"),
    ("06", ["members", "seed-9"], "parameter members=('seed-9',) is not allowed"),
    ("06", ["epochs", "0"], "parameter epochs=0 must be >= 1"),
    ("06", ["epochs", "1e9"], "parameter epochs=1000000000 must be <= 10000"),
    ("06", ["width", "100000"], "parameter width=100000 must be <= 16384"),
    ("07", ["noise_n_sigma", "0.5"], "parameter noise_n_sigma=0.5 must be >= 1.0"),
    ("07", ["width", "100"], "parameter width=100.0 must be <= 4.0"),
    ("08", ["lp_over", "batch"], "parameter lp_over='batch' is not allowed"),
    ("08", ["seeds", "(-1, 2)"], "parameter seeds=(-1, 2) must be >= 0"),
    ("08", ["nonsense", "1"], "unknown parameter nonsense for 08_santurkar_smoothness"),
    ("09", ["ga_population", "1"], "parameter ga_population=1 must be >= 2"),
    ("09", ["sweep_steps", "0"], "parameter sweep_steps=0 must be >= 1"),
    ("09", ["seeds", "100000000000000000000"], "parameter seeds=(100000000000000000000,) must be <= 4294967295"),
    ("09", ["mlp_steps", "True"], "parameter mlp_steps=True should be of type int"),
    ("07", ["noise_n_mu", "1e999"], "parameter noise_n_mu=inf must be <= 100.0"),
    ("07", ["noise_n_sigma", "1e6"], "parameter noise_n_sigma=1000000.0 must be <= 100.0"),
    ("04", ["steps", "100000000000"], "parameter steps=100000000000 must be <= 10000000"),
    ("08", ["large_lr", "1e300"], "parameter large_lr=1e+300 must be <= 100.0"),
    ("10", ["nonsense", "1"], "unknown parameter nonsense for 10_verdicts"),
    ("02", ["seed", "{'a': 1}"], "value \"{'a': 1}\": a dict is not allowed"),
    ("02", ["seed", "b'1'"], "value \"b'1'\": a bytes is not allowed"),
]


def test_the_table_covers_every_chapter():
    assert {run.resolve_chapter(c).stem for c, _, _ in TABLE} == set(run.chapters())


@pytest.mark.parametrize("chapter, params, expected", TABLE,
                         ids=[f"{c}-{p[0]}={p[1]}" for c, p, _ in TABLE])
def test_a_bad_parameter_fails_in_the_runner_with_one_line(chapter, params, expected, tmp_path,
                                                           capsys, monkeypatch):
    started = []
    monkeypatch.setattr("papermill.execute_notebook", lambda *a, **k: started.append(a))
    args = [chapter, "--profile", "smoke", "--out", str(tmp_path / "out"),
            "--results", str(tmp_path / "results")]
    for name, value in zip(params[::2], params[1::2]):
        args += ["-p", name, value]
    status = run.main(args)
    err = capsys.readouterr().err
    assert status == 2, err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert not started and not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("chapter", run.chapters())
def test_every_chapter_builds_its_config_in_the_runner(chapter):
    cfg, params = run.check_config(run.resolve_chapter(chapter), "smoke", {})
    if chapter == "10_verdicts":  # the closing page trains nothing: it reads the stored records
        assert cfg is None
        return
    assert cfg is not None and cfg.profile == "smoke" and params == {}


# ---------------------------------------------------------------------------------------------
# Stored records: a record copied under another run's name, or one that cannot be read, is
# treated as missing with a warning naming the file, and the experiment runs again.

def _redigest(path, change):
    """Rewrite the record at ``path`` with ``change(doc)`` applied and a digest that matches
    (what someone who knows the format could do)."""
    import json

    from bn_utils.book import results

    doc = json.loads(path.read_text())
    change(doc)
    doc["digest"] = results.record_digest(doc)
    path.write_text(json.dumps(doc))


def _copy_over(record, other):
    import shutil

    shutil.copy(other.path, record.path)
    shutil.copy(other.path.with_suffix(".npz"), record.path.with_suffix(".npz"))


def _replace(path, make):
    path.unlink()
    make(path)


def _huge_header_npz(record, other):
    """An npz whose array header declares 10**9 rows (about 4 GB) around 8 bytes of data."""
    import hashlib
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (10**9,)})
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as z:
        z.writestr("curve.npy", buf.getvalue() + b"\0" * 8)
    npz = record.path.with_suffix(".npz")
    npz.write_bytes(blob.getvalue())
    sha = hashlib.sha256(blob.getvalue()).hexdigest()
    _redigest(record.path, lambda doc: doc["meta"].update(arrays_sha256=sha))


def _deep(n):
    return '{"meta": {}, "metrics": ' + "[" * n + "]" * n + "}"


RECORDS = [  # (id, damage(record, other record of the same config), text the warning holds)
    ("copied-from-another-run", _copy_over, "is the record of ch/other"),
    ("renamed-inside", lambda r, o: _redigest(r.path, lambda d: d.update(name="other")),
     "is the record of ch/other"),
    ("another-chapter", lambda r, o: _redigest(r.path, lambda d: d.update(chapter="ch9")),
     "is the record of ch9/exp"),
    ("name-not-a-string", lambda r, o: _redigest(r.path, lambda d: d.update(name=["exp"])),
     "not a JSON object with"),
    ("nan", lambda r, o: r.path.write_text(r.path.read_text().replace('"accuracy": 0.502',
                                                                      '"accuracy": NaN')),
     "not readable JSON (holds NaN"),
    ("nested-100000-deep", lambda r, o: r.path.write_text(_deep(100_000)), "nested too deeply"),
    ("not-utf8", lambda r, o: r.path.write_bytes(b'{"meta": "\xff\xfe"}'), "not readable JSON"),
    ("huge", lambda r, o: os.truncate(r.path, (64 << 20) + 1), "more than the"),
    ("dev-zero", lambda r, o: _replace(r.path, lambda p: p.symlink_to("/dev/zero")), "a device"),
    ("a-fifo", lambda r, o: _replace(r.path, os.mkfifo), "a device, pipe or socket"),
    ("link-loop", lambda r, o: _replace(r.path, lambda p: p.symlink_to(p)), "cannot be opened"),
    ("npz-declares-1e9-rows", _huge_header_npz, "declares 4,000,000,000 bytes"),
]


def _experiment():
    """Return (config, experiment that counts its calls in ``calls``, calls)."""
    import numpy as np

    from bn_utils.book.profiles import Config, param

    @dataclasses.dataclass(frozen=True)
    class Exp(Config):
        steps: int = param(2, min=1, max=10)

    calls = []

    def fn(cfg):
        calls.append(cfg)
        return {"accuracy": 0.502, "curve": np.arange(2, dtype=np.float32)}

    return Exp(profile="smoke"), fn, calls


@pytest.mark.parametrize("damage, expected", [r[1:] for r in RECORDS], ids=[r[0] for r in RECORDS])
def test_an_unusable_record_is_missing_with_a_warning_naming_it(damage, expected):
    import warnings

    import numpy as np

    from bn_utils.book import results

    cfg, fn, calls = _experiment()
    record = results.load_or_run("ch", "exp", cfg, fn)
    damage(record, results.load_or_run("ch", "other", cfg, lambda c: {"accuracy": 0.1,
                                                                   "curve": np.zeros(2)}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = results.load_or_run("ch", "exp", cfg, fn)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and expected in said[0] and "treated as missing" in said[0], said
    assert str(record.path.parent) in said[0] and "exp__smoke__" in said[0], said
    assert len(calls) == 2 and again["accuracy"] == 0.502


@pytest.mark.parametrize("damage, expected", [r[1:] for r in RECORDS], ids=[r[0] for r in RECORDS])
def test_an_unusable_record_is_not_trusted_by_a_sweep(damage, expected):
    """``results.is_trusted`` (the sweep's check before it skips a done point) refuses each too."""
    import numpy as np

    from bn_utils.book import results

    cfg, fn, calls = _experiment()
    record = results.load_or_run("ch", "exp", cfg, fn)
    assert results.is_trusted(record.path)
    damage(record, results.load_or_run("ch", "other", cfg, lambda c: {"accuracy": 0.1,
                                                                   "curve": np.zeros(2)}))
    with pytest.warns(UserWarning, match=expected.replace("(", r"\(")):
        assert not results.is_trusted(record.path)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_folder_where_a_record_goes_fails_before_training(suffix):
    from bn_utils.book import results

    cfg, fn, calls = _experiment()
    record = results.load_or_run("ch", "exp", cfg, fn)
    _replace(record.path.with_suffix(suffix), Path.mkdir)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=f"exp__smoke__\\w+\\{suffix} is a folder"):
        results.load_or_run("ch", "exp", cfg, fn)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------
# Checkpoints: one copied from another run (another seed, config or chapter) is refused naming the
# file. Chapter 07/08's runner here (a DLN: no data); chapters 04 and 05 pass the same identity
# (test_ch04_mnist.py, test_ch05_cifar_inception.py; train.resume_state is what checks it,
# test_train.py).

CHECKPOINTS = [  # (id, what the checkpoint's run differs in: seed, config change, chapter)
    ("another-seed", 1, {}, "07_santurkar_noise"),
    ("another-config", 0, {"dln_measure_every": 5}, "07_santurkar_noise"),
    ("another-chapter", 0, {}, "08_santurkar_smoothness"),
]


class _Killed(Exception):
    """What a run killed after its first checkpoint raises here."""


@pytest.mark.parametrize("seed, change, chapter", [r[1:] for r in CHECKPOINTS],
                         ids=[r[0] for r in CHECKPOINTS])
def test_a_checkpoint_of_another_run_is_refused_naming_it(seed, change, chapter):
    from bn_utils.book import results
    from bn_utils.experiments import ch07_santurkar_noise as noise, santurkar

    def killed_at_25(cfg, ctx):
        return {25: [lambda *_: (_ for _ in ()).throw(_Killed())]}

    cfg = noise.NoiseConfig.for_profile("smoke", dln_steps=30, checkpoint_every=10)
    mine = next(r for r in noise.runs(cfg) if r.arch == "dln")
    theirs = (santurkar.Run(mine.arch, mine.norm, mine.lr, seed), cfg.replace(**change), chapter)
    with pytest.raises(_Killed):
        santurkar.train_run(theirs[2], theirs[1], theirs[0], killed_at_25)
    path = results.checkpoint_path(noise.CHAPTER, mine.name, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(results.checkpoint_path(theirs[2], theirs[0].name, theirs[1]).read_bytes())
    with pytest.raises(ValueError, match=f"checkpoint {path} belongs to another run.*"
                                         "delete it to start the run afresh"):
        santurkar.train_run(noise.CHAPTER, cfg, mine, lambda c, ctx: {})


# ---------------------------------------------------------------------------------------------
# Dataset files: SHA256SUMS in either format, unrecognised lines, and files that are not files.

def _mnist(folder):
    """Write a small valid mnist.npz into ``folder``; return its SHA-256."""
    import hashlib

    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(folder / "mnist.npz", x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             y_train=np.arange(20) % 10, x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
             y_test=np.arange(10) % 10)
    return hashlib.sha256((folder / "mnist.npz").read_bytes()).hexdigest()


def _sums(text):
    return lambda folder, sha: (folder / "SHA256SUMS").write_text(text.format(sha=sha, bad="0" * 64))


def _absurd_npz(folder, sha):
    """mnist.npz whose x_train header declares 10**9 images (730 GiB) around a few bytes."""
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (10**9, 28, 28)})
    with zipfile.ZipFile(folder / "mnist.npz", "w") as z:
        z.writestr("x_train.npy", header.getvalue() + b"\0" * 64)


DATA = [  # (id, change to the folder, None if it loads, else text of the DataError)
    ("sha256sum", _sums("{sha}  mnist.npz\n"), None),
    ("sha256sum-binary-mode", _sums("{sha} *mnist.npz\n"), None),
    ("bsd-tag", _sums("SHA256 (mnist.npz) = {sha}\n"), None),
    ("dot-slash", _sums("{sha}  ./mnist.npz\n"), None),
    ("comments-and-blank-lines", _sums("# made by sha256sum\n\n{sha}  mnist.npz\n"), None),
    ("other-files-only", _sums("{bad}  cifar10_jpeg.npz\n"), None),
    ("sha256sum-wrong", _sums("{bad}  mnist.npz\n"), "does not match its SHA256SUMS digest"),
    ("bsd-tag-wrong", _sums("SHA256 (mnist.npz) = {bad}\n"), "does not match its SHA256SUMS"),
    ("dot-slash-wrong", _sums("{bad}  ./mnist.npz\n"), "does not match its SHA256SUMS digest"),
    ("bsd-tag-other-algorithm", _sums("MD5 (mnist.npz) = 0123456789abcdef0123456789abcdef\n"),
     "SHA256SUMS line 1 is not a SHA-256 line"),
    ("unrecognised-line", _sums("{sha}  mnist.npz\nmnist.npz is fine, trust me\n"),
     "SHA256SUMS line 2 is not a SHA-256 line"),
    ("short-digest", _sums("{sha_short}  mnist.npz\n".replace("{sha_short}", "abc123")),
     "SHA256SUMS line 1 is not a SHA-256 line"),
    ("listed-twice", _sums("{sha}  mnist.npz\n{bad}  ./mnist.npz\n"), "lists mnist.npz twice"),
    ("not-utf8", lambda f, sha: (f / "SHA256SUMS").write_bytes(b"\xff\xfe" + sha.encode()),
     "SHA256SUMS is not UTF-8 text"),
    ("sums-a-folder", lambda f, sha: (f / "SHA256SUMS").mkdir(), "SHA256SUMS: is a folder"),
    ("data-is-dev-zero", lambda f, sha: (_sums("{sha}  mnist.npz\n")(f, sha),
                                         (f / "mnist.npz").unlink(),
                                         (f / "mnist.npz").symlink_to("/dev/zero")),
     "mnist.npz: is a device, pipe or socket"),
    ("data-a-folder", lambda f, sha: ((f / "mnist.npz").unlink(), (f / "mnist.npz").mkdir()),
     "mnist.npz: is a folder"),
    ("npz-declares-1e9-images", _absurd_npz, "x_train.npy declares 784,000,000,000 bytes"),
]


@pytest.mark.parametrize("change, expected", [r[1:] for r in DATA], ids=[r[0] for r in DATA])
def test_a_dataset_folder_is_checked_before_anything_trains(change, expected, tmp_path,
                                                            monkeypatch):
    from bn_utils import data

    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    change(tmp_path, _mnist(tmp_path))
    if expected is None:
        assert data.load("mnist")[0].shape == (20, 28, 28)
        return
    with pytest.raises(data.DataError) as err:
        data.load("mnist")
    assert expected in str(err.value) and str(tmp_path) in str(err.value), err.value


def test_a_symlink_loop_in_bn_data_dir_is_a_data_error_outside_the_runner(tmp_path, monkeypatch):
    """The runner refuses it before the kernel starts (RUNNER below); a direct call too."""
    from bn_utils import data

    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path / "loop"))
    with pytest.raises(data.DataError, match=f"BN_DATA_DIR {tmp_path}/loop: a symlink loop"):
        data.load("mnist")


@pytest.mark.parametrize("kwargs, expected", [
    ({"n_train": True}, "n_train=True must be a positive integer"),
    ({"n_test": False}, "n_test=False must be a positive integer"),
    ({"n_train": 2.0}, "n_train=2.0 must be a positive integer"),
])
def test_a_subset_size_that_is_not_an_integer_is_refused(kwargs, expected):
    from bn_utils import data

    with pytest.raises(ValueError, match=expected):
        data.load("mnist", **kwargs)


# ---------------------------------------------------------------------------------------------
# The runner's and the sweep's options: checked before a kernel starts or a job is submitted,
# exit status 2 and one line naming the option. "{tmp}" is the test's temporary folder, where
# "loop" is a symlink to itself and "file" a file.

RUNNER = [  # (arguments after the chapter, environment, text of the one-line error)
    (["--device", "garbage!"], {}, "--device 'garbage!' is not a device"),
    (["--device", "mps"], {}, "--device 'mps': this book runs on cpu or cuda"),
    (["--device", "meta"], {}, "--device 'meta': this book runs on cpu or cuda"),
    (["--device", "cuda:7"], {}, "--device 'cuda:7'"),
    ([], {"BN_DEVICE": "garbage!"}, "BN_DEVICE 'garbage!' is not a device"),
    ([], {"BN_DEVICE": "mps"}, "BN_DEVICE 'mps': this book runs on cpu or cuda"),
    (["-p", "seed", "1", "-p", "seed", "2"], {}, "parameter seed is given twice"),
    (["--timeout", "0"], {}, "--timeout 0 must be a positive number of seconds"),
    (["--timeout", "-5"], {}, "--timeout -5 must be a positive number of seconds"),
    (["--out", "{repo}/chapters"], {}, "is inside chapters/"),
    (["--out", "{repo}/chapters/x"], {}, "is inside chapters/"),
    (["--out", "{tmp}/loop"], {}, "--out {tmp}/loop: a symlink loop"),
    (["--out", "{tmp}/loop/sub"], {}, "--out {tmp}/loop/sub: a symlink loop"),
    (["--results", "{tmp}/loop"], {}, "--results {tmp}/loop: a symlink loop"),
    (["--out", "{tmp}/file/sub"], {}, "--out {tmp}/file/sub: {tmp}/file is a file, not a folder"),
    ([], {"BN_DATA_DIR": "{tmp}/loop"}, "BN_DATA_DIR {tmp}/loop: a symlink loop"),
    ([], {"BN_DATA_DIR": "{tmp}/file"}, "BN_DATA_DIR {tmp}/file: a file, not a folder"),
]


def _options(tmp_path, args, env, monkeypatch):
    """Return ``args`` and set ``env`` with {tmp} and {repo} filled in; make {tmp}/loop, {tmp}/file."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "file").write_text("x")
    fill = lambda s: s.format(tmp=tmp_path, repo=run.REPO_DIR)  # noqa: E731
    for name, value in env.items():
        monkeypatch.setenv(name, fill(value))
    return [fill(a) for a in args], fill


@pytest.mark.parametrize("args, env, expected", RUNNER, ids=[" ".join(a) or str(e) for a, e, _ in RUNNER])
def test_a_bad_runner_option_fails_before_the_kernel_starts(args, env, expected, tmp_path,
                                                            capsys, monkeypatch):
    import torch

    if "cuda" in expected and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    started = []
    monkeypatch.setattr("papermill.execute_notebook", lambda *a, **k: started.append(a))
    args, fill = _options(tmp_path, args, env, monkeypatch)
    defaults = {"--out": str(tmp_path / "out"), "--results": str(tmp_path / "results")}
    for option, value in defaults.items():
        if option not in args:
            args += [option, value]
    status = run.main(["01", "--profile", "smoke", *args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert fill(expected) in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert not started


def test_record_warnings_of_the_kernel_are_also_printed_by_the_runner(tmp_path, capsys,
                                                                      monkeypatch):
    import json

    warning = ("/x/bn_utils/book/results.py:250: UserWarning: /r/01/shift__smoke__abc.json: does not "
               "match its digest (…); treated as missing (the experiment runs again)\n")

    def execute(nb, out, **kw):  # an executed notebook whose cell printed the warning
        cell = {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stderr",
                                                  "text": [warning, "  warnings.warn(\n"]}]}
        Path(out).write_text(json.dumps({"cells": [cell]}))

    monkeypatch.setattr("papermill.execute_notebook", execute)
    status = run.main(["01", "--profile", "smoke", "--out", str(tmp_path / "out"),
                       "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 0, err
    assert err == ("warning: /r/01/shift__smoke__abc.json: does not match its digest (…); "
                   "treated as missing (the experiment runs again)\n")


SWEEP = [  # (arguments after the chapter, text of the one-line error)
    (["-p", "seed", "0", "--parallel", "-1"], "--parallel -1 must be at least 1"),
    (["-p", "seed", "0", "--parallel", "0"], "--parallel 0 must be at least 1"),
    (["-p", "seed", "0", "--time", "-1"], "--time -1 must be a positive number of minutes"),
    (["-p", "seed", "0", "--time", "0"], "--time 0 must be a positive number of minutes"),
    (["-p", "seed", "0", "--timeout", "0"], "--timeout 0 must be a positive number of seconds"),
    (["-p", "seed", "0", "--out", "{tmp}/file"], "--out {tmp}/file: {tmp}/file is a file"),
    (["-p", "seed", "0", "--out", "{tmp}/loop"], "--out {tmp}/loop: a symlink loop"),
    (["-p", "seed", "0", "--device", "garbage!"], "--device 'garbage!' is not a device"),
    (["-p", "seed", ",".join(map(str, range(101)))],
     "101 grid points (more than 100): add --yes to run them all"),
]


@pytest.mark.parametrize("args, expected", SWEEP, ids=[" ".join(a)[:40] for a, _ in SWEEP])
def test_a_bad_sweep_option_fails_before_any_job_is_submitted(args, expected, tmp_path, capsys,
                                                              monkeypatch):
    from bn_utils.book import sweep

    submitted = []
    monkeypatch.setattr(sweep, "submit", lambda sw, ex, points, parallel: submitted.append(points))
    monkeypatch.setattr(sweep, "executor", lambda *a, **k: None)
    args, fill = _options(tmp_path, args, {}, monkeypatch)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "sweep")]
    status = sweep.main(["01", "--profile", "smoke", "--results", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert fill(expected) in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert not submitted


def test_a_large_grid_runs_with_yes(tmp_path, monkeypatch, capsys):
    from bn_utils.book import sweep

    submitted = []
    monkeypatch.setattr(sweep, "submit", lambda sw, ex, points, parallel: submitted.append(points)
                        or [])
    monkeypatch.setattr(sweep, "executor", lambda *a, **k: None)
    status = sweep.main(["01", "--profile", "smoke", "-p", "seed", ",".join(map(str, range(101))),
                         "--yes", "--out", str(tmp_path / "s"), "--results", str(tmp_path / "r")])
    assert status == 0, capsys.readouterr().err
    assert len(submitted[0]) == 101


# ---------------------------------------------------------------------------------------------
# A run of another protocol is never merged into a chapter's record (chapters 07 and 09's cases
# of verdicts asked to decide on too few seeds are tested beside their claims, in tests/experiments)


def test_an_extra_seed_of_another_protocol_is_never_merged():
    import numpy as np

    from bn_utils.book import results
    from bn_utils.experiments import ch07_santurkar_noise as noise
    cfg = noise.NoiseConfig.for_profile("reference")
    record = results.Record(noise.CHAPTER, "noise", cfg.to_dict(), {"vgg_bn_lr0.1_s0/x": 1.0})
    other = cfg.replace(seeds=(1,), vgg_steps=cfg.vgg_steps + 1)        # another protocol's seed 1
    results.save(noise.CHAPTER, "vgg_bn_lr0.1_s1", other, {"x": np.arange(2.0)})
    assert noise.with_extra_seeds(record) is record
