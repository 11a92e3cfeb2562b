//! Parse two quantities and add them (compare with the Go peer in
//! `benches/peers/quantity`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kubepkg_util::quantity::Quantity;

fn parse_add(x: &str, y: &str) -> Option<Quantity> {
    let a = Quantity::parse(x).ok()?;
    let b = Quantity::parse(y).ok()?;
    a.checked_add(b)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("quantity_parse_add");
    for (x, y) in [("1.5Gi", "512Mi"), ("100m", "250m")] {
        group.bench_function(format!("{x}+{y}"), |b| {
            b.iter(|| parse_add(black_box(x), black_box(y)))
        });
    }
    group.finish();

    let q = Quantity::parse("1.5Gi").ok();
    c.bench_function("quantity_format_1536Mi", |b| {
        b.iter(|| black_box(q).map(|q| q.to_string()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
