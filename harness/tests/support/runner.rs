//! A test binary of tests that need something this machine may not have (Docker, an
//! Envoy): where it is missing they are reported ignored with the reason, never `ok`;
//! where it is required (`EGRESS_REQUIRE_*=1`, CI) its absence fails them.

/// `Some(Ok(why))`: ignore every test; `Some(Err(why))`: fail them; `None`: run them.
pub type Missing = Option<Result<String, String>>;

/// What `missing` says, given the reason and whether CI requires the thing.
pub fn missing(absent: bool, required_by: &str, why: String) -> Missing {
    absent.then(|| {
        if std::env::var(required_by).as_deref() == Ok("1") {
            Err(format!("{why}, and {required_by}=1"))
        } else {
            Ok(why)
        }
    })
}

/// Runs `tests` as libtest would, each ignored or failed as `missing` says.
pub fn run(missing: Missing, tests: Vec<(&'static str, fn())>) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let missing = missing.clone();
            libtest_mimic::Trial::ignorable_test(name, move || match missing {
                Some(Err(required)) => Err(required.into()),
                Some(Ok(why)) => Ok(libtest_mimic::Completion::ignored_with(why)),
                None => {
                    test();
                    Ok(libtest_mimic::Completion::Completed)
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
