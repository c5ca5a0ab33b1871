//! Schedules and LR-finder suggestions against values computed by fastai's own code
//! (tests/fixtures/schedules.json, written by scripts/schedule_fixture.py).

use fastvision::learner::lr_find::suggest;
use fastvision::learner::schedule::{OneCycle, Schedule, Sgdr};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/schedules.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_curve(name: &str, expected: &[f64], pos: &[f64], f: impl Fn(f64) -> f64) {
    let peak = expected.iter().copied().fold(0.0, f64::max);
    for (&p, &want) in pos.iter().zip(expected) {
        let got = f(p);
        // fastai evaluates its schedules in float32: agree to 1e-6 of the curve's peak.
        assert!(
            (got - want).abs() <= 1e-6 * peak,
            "{name} at {p}: {got} vs fastai {want}"
        );
    }
}

#[test]
fn one_cycle_matches_fastai() {
    let f = fixture();
    let pos = floats(&f["pos"]);
    let s = OneCycle::new(1e-3);
    assert_curve("one-cycle lr", &floats(&f["one_cycle_lr"]), &pos, |p| {
        s.lr(p)
    });
    assert_curve("one-cycle mom", &floats(&f["one_cycle_mom"]), &pos, |p| {
        s.mom(p)
    });
    let ft = OneCycle {
        pct_start: 0.3,
        div: 5.0,
        ..OneCycle::new(1e-3)
    };
    assert_curve("fine_tune lr", &floats(&f["one_cycle_ft_lr"]), &pos, |p| {
        ft.lr(p)
    });
}

#[test]
fn sgdr_restarts_like_fastai() {
    let f = fixture();
    let pos = floats(&f["pos"]);
    let sgdr = Sgdr {
        lr_max: 1e-3,
        n_cycles: 3,
        cycle_len: 1,
        cycle_mult: 2,
    };
    assert_eq!(
        sgdr.n_epochs() as u64,
        f["sgdr"]["n_epoch"].as_u64().unwrap()
    );
    let s = Schedule::Sgdr { sgdr, mom: 0.9 };
    assert_curve("sgdr lr", &floats(&f["sgdr"]["lr"]), &pos, |p| s.lr(p));
    assert_eq!(
        s.lr(1.0 / 7.0),
        1e-3,
        "restart at the top of the second cycle"
    );
}

#[test]
fn flat_cos_matches_fastai() {
    let f = fixture();
    let pos = floats(&f["pos"]);
    let s = Schedule::FlatCos {
        lr: 1e-3,
        pct_start: 0.75,
        div_final: 1e5,
        mom: 0.9,
    };
    assert_curve("flat-cos lr", &floats(&f["flat_cos_lr"]), &pos, |p| s.lr(p));
}

#[test]
fn lr_finder_suggestions_match_fastai() {
    let f = &fixture()["lr_find"];
    let s = suggest(
        &floats(&f["lrs"]),
        &floats(&f["losses"]),
        f["num_it"].as_u64().unwrap() as usize,
    )
    .unwrap();
    for (name, got) in [
        ("valley", s.valley),
        ("steep", s.steep),
        ("minimum", s.minimum),
        ("slide", s.slide),
    ] {
        let want = f[name].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "{name}: {got} vs fastai {want}"
        );
    }
}
