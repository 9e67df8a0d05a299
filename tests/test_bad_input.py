"""Bad input to the runner: every chapter's parameters are checked by the runner itself, before a
kernel starts, and a bad one gives exit status 2 and one line that names it."""

import pytest

from bn_utils import run

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
    ("06", ["members", "seed-9"], "parameter members=('seed-9',) is not allowed"),
    ("06", ["epochs", "0"], "parameter epochs=0 must be >= 1"),
    ("07", ["noise_n_sigma", "0.5"], "parameter noise_n_sigma=0.5 must be >= 1.0"),
    ("07", ["width", "100"], "parameter width=100.0 must be <= 4.0"),
    ("08", ["lp_over", "batch"], "parameter lp_over='batch' is not allowed"),
    ("08", ["seeds", "(-1, 2)"], "parameter seeds=(-1, 2) must be >= 0"),
    ("08", ["nonsense", "1"], "unknown parameter nonsense for 08_santurkar_smoothness"),
    ("09", ["ga_population", "1"], "parameter ga_population=1 must be >= 2"),
    ("09", ["sweep_steps", "0"], "parameter sweep_steps=0 must be >= 1"),
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
