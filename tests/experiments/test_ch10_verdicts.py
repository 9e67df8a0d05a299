"""The closing page (chapter 10): every chapter's claims read from the best stored record,
tallied by source, one row per claim; a smoke record is shown but judges nothing."""

from pathlib import Path

from bn_utils.book import claims, results
from bn_utils.experiments import ch10_verdicts as verdicts
from bn_utils.experiments.ch09_in_practice import CHAPTER, PracticeConfig


def test_verdicts_use_the_best_stored_profile_and_say_when_nothing_is_stored(tmp_path):
    cfg = PracticeConfig.for_profile("smoke")
    for profile, value in (("quick", 1.0), ("reference", 2.0)):
        results.save(CHAPTER, "cost", cfg.replace(profile=profile), {"x": value})
    assert results.best_record(CHAPTER, "cost")["x"] == 2.0
    assert results.best_record(CHAPTER, "missing") is None
    rows = verdicts.verdicts(tmp_path / "empty")
    assert all(r["record"] == verdicts.NOT_RUN and r["verdict"] == "not run" for r in rows)
    papers = [r for r in rows if r["kind"] == "paper"]
    assert claims.counts([r["verdict"] for r in papers])["not decided"] == len(papers)
    assert {"chapter", "claim", "source", "their number", "ours", "spread", "record", "verdict"} <= set(rows[0])


def test_a_smoke_record_is_shown_but_judges_no_claim():
    from bn_utils.experiments import ch06_ensemble as ens

    cfg = ens.EnsembleConfig.for_profile("smoke")
    member = {"top1": 0.6, "top5": 0.9, "diverged": False, "reused_from_chapter_05": True}
    out = {"members": {n: member for n in cfg.members}, "n_used": 2, "best_member": cfg.members[0],
           "ensemble": {"top1": 0.7, "top5": 0.95}, "gain_top1": 0.1, "gain_top1_se": 0.01, "n_test": 200}
    results.save(ens.CHAPTER, "ensemble", cfg, out)
    rows = [r for r in verdicts.verdicts() if r["chapter"] == "06"]
    assert len(rows) == 1 and rows[0]["verdict"] == verdicts.SMOKE      # one row: one claim
    assert rows[0]["record"].startswith("smoke")
    results.save(ens.CHAPTER, "ensemble", cfg.replace(profile="quick"), out)   # a quick one judges
    (row,) = [r for r in verdicts.verdicts() if r["chapter"] == "06"]
    assert row["verdict"] == "yes" and "paired SE" in row["spread"]     # +10 ± 1 points
    out["gain_top1"] = 0.015                                           # +1.5 ± 1: inside the noise
    results.save(ens.CHAPTER, "ensemble", cfg.replace(profile="quick"), out)
    assert [r["verdict"] for r in verdicts.verdicts() if r["chapter"] == "06"] == ["inside the noise"]


def test_the_tally_counts_every_verdict_but_yes_no_and_noise_as_not_decided():
    verdicts_ = ("yes", "yes", "no", "inside the noise", "1 seed: not decided", "not comparable", "not run")
    assert claims.counts(verdicts_) == {"yes": 2, "no": 1, "inside the noise": 1, "not decided": 3}


def test_each_claim_is_one_row_on_the_closing_page(monkeypatch):
    monkeypatch.setenv("BN_RESULTS_DIR", str(Path(__file__).resolve().parents[2] / "results"))
    rows = verdicts.verdicts()   # the book's stored records (it only reads them)
    keys = [(r["chapter"], r["claim"]) for r in rows]
    assert len(keys) == len(set(keys)), "a claim listed twice"
    chapter05 = {r["claim"] for r in rows if r["chapter"] == "05"}
    assert "BN-x30 trains more slowly than BN-x5 at first but ends higher" in chapter05
    assert ("BN-x5-Sigmoid never reaches Inception's best accuracy (its seeds' mean best below Inception's)"
            in chapter05)


def _row(chapter, claim, verdict, kind="paper"):
    return {"chapter": chapter, "claim": claim, "verdict": verdict, "kind": kind}


def test_the_opening_answer_says_only_what_the_verdicts_allow_in_agreeing_grammar():
    rows = [_row("04", "a", "yes"), _row("05", "b", "no"), _row("05", "c", "inside the noise"),
            _row("07", "noisy BN's layer inputs move more than the standard network's", "yes"),
            _row("07", "noisy BN trains better than the standard network", "yes"),
            _row("07", "noisy BN trains nearly as well as BN", "inside the noise"),
            _row("07", "BN does not reduce gradient-based ICS", "no"),
            _row("08", "loss range", "inside the noise"), _row("08", "larger learning rate", "yes"),
            _row("08", "a test of the book's own", "yes", kind="book")]
    a = verdicts.answer(rows)
    assert a["ans_ioffe"] == "of 3 claims, 1 holds, 1 does not and 1 sits inside the noise"
    assert "benefit to training does not need steady layer inputs" in a["q_shift"]
    assert "nearly as well as BN, sits inside the seeds' noise" in a["q_shift"]
    assert a["q_ics"].endswith("does not hold.")
    assert "1 claim that BN makes the loss landscape smoother, 1 sits inside" in a["q_smooth"]
    assert "of the paper's 1 other claim there: that larger learning rate, holds" in a["q_smooth"]
    assert "The book's own test, that a test of the book's own, holds." in a["q_smooth"]
    assert "leave open why BN helps" in a["q_smooth"]
    assert a["q_short"] == ("At our scale, the records argue against the covariate-shift explanation "
                            "(BN with noise injected into its layer inputs still reaches a higher training "
                            "accuracy than the standard network), and do not show BN smoothing the landscape "
                            "in every network they measure either (chapter 8 gives each network's reading), "
                            "so why BN helps stays open.")
    rows[6] = _row("07", "BN does not reduce gradient-based ICS", "inside the noise")
    q_ics = verdicts.answer(rows)["q_ics"]   # a negative claim inside the noise says why
    assert "sits inside the seeds' noise: in no case was BN decidedly better on both measures at once" in q_ics
    rows[6] = _row("07", "BN does not reduce gradient-based ICS", "no")
    rows[4] = _row("07", "noisy BN trains better than the standard network", "inside the noise")
    a = verdicts.answer(rows)    # the benefit no longer shown to survive: the sentence says so
    assert "does not show" in a["q_shift"] and "does not need" not in a["q_shift"]
    assert a["q_short"].startswith("At our scale, the records do not decide the covariate-shift explanation")
    rows[7] = _row("08", "loss range", "yes")
    a = verdicts.answer(rows)
    assert "side with smoothness" in a["q_smooth"] and a["q_short"].endswith("and side with the smoother landscape.")


def test_chapters_01_02_04_state_their_own_claims_and_say_not_run_without_a_record():
    from bn_utils.experiments import ch01_covariate_shift as shift, ch02_forward_pass as fwd, ch04_mnist as mnist

    rows = [*shift.claim_rows(None), fwd.population_claim(None), fwd.eval_branch_claim(None),
            *mnist.run_claims(None), mnist.batch_one_claim(None)]
    assert [r["verdict"] for r in rows] == ["not run"] * 7
    assert [r["kind"] for r in rows].count("book") == 1          # the eval-branch bug is the book's test
    assert {"claim", "source", "their number", "ours", "spread", "verdict", "kind"} == set(rows[0])


def test_a_chapters_heading_names_its_records_and_a_column_appears_only_where_profiles_differ():
    def rows(*pairs):
        return [{"record": rec, "spread": spread} for rec, spread in pairs]

    assert verdicts._heading_record(rows(("full, 3 seeds", "+1.2 ± 0.2, 3 seeds"),
                                         ("full, 3 seeds", "+0.4"))) == "full, 3 seeds"
    # one profile, seeds that differ by row, each spread naming its seeds: the heading says so
    assert verdicts._heading_record(rows(("full, 3 seeds", "+1.2 ± 0.2, 3 seeds"),
                                         ("full, 1 network", "+9.9 points, 1 seed"))
                                    ) == f"full, {verdicts.PER_ROW}"
    # a spread that does not name its seeds, or two profiles: the table needs a record column
    assert verdicts._heading_record(rows(("full, 3 seeds", "+1.2"), ("full, 1 network", "+9.9"))) is None
    assert verdicts._heading_record(rows(("full, 3 seeds", "3 seeds"), ("reference, 3 seeds", "3 seeds"))) is None


def test_chapter_09s_heading_does_not_claim_one_seed_count_for_its_rows(monkeypatch):
    monkeypatch.setenv("BN_RESULTS_DIR", str(Path(__file__).resolve().parents[2] / "results"))
    mine = [r for r in verdicts.verdicts() if r["chapter"] == "09"]
    assert mine, "chapter 09's rows are on the closing page"
    assert all(r["record"].endswith(f", {verdicts.PER_ROW}") for r in mine)
    assert all("seed" in r["spread"] for r in mine)


def test_the_batch_size_one_claim_is_decided_by_whether_the_hidden_weights_moved():
    from bn_utils.experiments import ch04_mnist as mnist

    run = {"weight_change": [0.0, 0.0, 0.0, 0.04], "steps_done": 3000, "evals": {"test_accuracy": [0.1, 0.101]}}
    row = mnist.batch_one_claim(run)     # the output layer learns; the hidden ones cannot
    assert row["verdict"] == "yes" and "bit for bit" in row["ours"] and "exact" in row["spread"]
    run["weight_change"][1] = 1e-7       # a hidden layer that moved at all refutes it
    assert mnist.batch_one_claim(run)["verdict"] == "no"
