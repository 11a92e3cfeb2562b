package quantity

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

var sink resource.Quantity

func parseAdd(b *testing.B, x, y string) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
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
}

// BenchmarkParseAdd parses two quantities and adds them, the same work as
// the Rust criterion benchmark in crates/util/benches/quantity.rs.
func BenchmarkParseAdd(b *testing.B) {
	b.Run("1.5Gi+512Mi", func(b *testing.B) { parseAdd(b, "1.5Gi", "512Mi") })
	b.Run("100m+250m", func(b *testing.B) { parseAdd(b, "100m", "250m") })
}
