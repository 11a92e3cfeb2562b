//! `cargo xtask bench NAME`: one benchmark, kubepkg and its peer measured in
//! the same run, printed as a ratio.

use crate::sh::Res;

/// Known benchmarks.
const BENCHES: &[(&str, &str)] = &[];

pub fn run(args: &[&str]) -> Res {
    match args {
        [] | ["list"] => {
            for (name, what) in BENCHES {
                println!("{name:<16} {what}");
            }
            Ok(())
        }
        [name] => Err(format!(
            "unknown benchmark {name:?}; `cargo xtask bench list` shows them"
        )),
        _ => Err("usage: cargo xtask bench NAME | list".into()),
    }
}
