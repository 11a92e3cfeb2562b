// Package quantity is the Go peer of kubepkg-util's Quantity benchmark
// (crates/util/benches/quantity.rs): parse two quantities and add them.
package quantity

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

var sink resource.Quantity

// The same pairs as the criterion group `quantity_parse_add`.
var pairs = [][2]string{{"1.5Gi", "512Mi"}, {"100m", "250m"}}

func parseAdd(b *testing.B, x, y string) {
	q, err := resource.ParseQuantity(x)
	if err != nil {
		b.Fatal(err)
	}
	r, err := resource.ParseQuantity(y)
	if err != nil {
		b.Fatal(err)
	}
	q.Add(r)
	sink = q
}

// BenchmarkParseAdd alternates between the pairs, so its ns/op is the mean
// of the per-pair costs, comparable with the mean of the criterion group.
func BenchmarkParseAdd(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pairs[i&1]
		parseAdd(b, p[0], p[1])
	}
}

// BenchmarkParseAddBinary is the `1.5Gi+512Mi` pair alone.
func BenchmarkParseAddBinary(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		parseAdd(b, pairs[0][0], pairs[0][1])
	}
}

// BenchmarkParseAddMilli is the `100m+250m` pair alone.
func BenchmarkParseAddMilli(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		parseAdd(b, pairs[1][0], pairs[1][1])
	}
}
