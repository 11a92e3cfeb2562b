// Command gentables records how k8s.io/apimachinery (and Go's time package)
// parse and print quantities, label selectors, names and durations, as JSON
// lines that kubepkg-util's tests compare against.
//
// Run from benches/peers/quantity:
//
//	go run ./gentables ../../../crates/util/tests/data
package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

type writer struct {
	f   *os.File
	enc *json.Encoder
}

func open(dir, name string) *writer {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		panic(err)
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	return &writer{f: f, enc: enc}
}

func (w *writer) put(v any) {
	if err := w.enc.Encode(v); err != nil {
		panic(err)
	}
}

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	rng := rand.New(rand.NewSource(20240611))
	quantities(open(dir, "quantity.jsonl"), rng)
	names(open(dir, "names.jsonl"), rng)
	selectors(open(dir, "selectors.jsonl"))
	durations(open(dir, "durations.jsonl"), rng)
}

// ---------------------------------------------------------------- quantities

func quantityInputs(rng *rand.Rand) []string {
	in := []string{
		"0", "1", "-1", "+1", "01", "1.", ".", "-", "+", "", " 1", "1 ", "0.0", "00", "-0",
		"100m", "1.5Gi", "2e3", "1k", "0.5", "1E", "500Ki", "1000m", "1024Ki", "1.5e3", "12e-1",
		"0.1n", "1n", "-0.5n", "1.5n", "1u", "1m", "1M", "1G", "1T", "1P", "1E", "1000G", "1e9",
		"1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei", "0.5Ei", "8Ei", "9Ei", "-8Ei", "0.5Ki", "0.0001Ki",
		"-0.0001Ki", "1023.5Ki", "1024.5Ki", "2047.5Ki", "1025Ki", "1023", "1024", "-1024", "1023.9",
		"1e-40", "1e-9", "1e-12", "5e-10", "1e+3", "1e03", "1E3", "1e4294967296", "0e99999999999",
		"Gi", "Ki", "1.G", "0.1m", "3.5e-1", "1536Mi", "250m", "512Mi", "128974848", "129e6", "129M",
		"123Mi", "0.000000000000000000000000000001Ki", "100E", "170E",
		"1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", "1e", "1Ki3",
		"1K", "1KI", "1ki", "1e+", "1e-", "1m1", "1Mi+", "0e9999999999999999999", "Pi", "Ei", "e-18",
		"-.Ei", "1.5 Gi", "1,5Gi", "١",
	}
	sfx := []string{"", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	digits := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte(byte('0' + rng.Intn(10)))
		}
		return b.String()
	}
	for i := 0; i < 1500; i++ {
		s := []string{"", "", "", "-", "+"}[rng.Intn(5)]
		if rng.Intn(3) == 0 {
			s += fmt.Sprint([]int{0, 1, 2, 3, 5, 8, 10, 100, 512, 1000, 1024, 1023, 1536, 2048, 999, 1500, 4096, 65536}[rng.Intn(18)])
		} else {
			s += digits(rng.Intn([]int{3, 6, 12, 20}[rng.Intn(4)] + 1))
		}
		if rng.Intn(5) < 2 {
			s += "." + digits(rng.Intn([]int{2, 5, 12, 25}[rng.Intn(4)]+1))
		}
		switch r := rng.Intn(20); {
		case r < 14:
			s += sfx[rng.Intn(len(sfx))]
		case r < 19:
			s += []string{"e", "E"}[rng.Intn(2)] + []string{"", "+", "-"}[rng.Intn(3)] + fmt.Sprint(rng.Intn(30))
		default:
			s += []string{"x", "Kix", "e", "i", "mi", "e1e"}[rng.Intn(6)]
		}
		in = append(in, s)
	}
	return in
}

// Values kubepkg-util deliberately does not mirror: magnitudes beyond its
// i128 nano-unit range, and decimal-SI values from 10^21 up, which Go prints
// without a suffix (changing the value).
var limit = new(big.Rat).SetFrac(big.NewInt(17), big.NewInt(1))

func outOfScope(q resource.Quantity) bool {
	r, ok := new(big.Rat).SetString(q.AsDec().String())
	if !ok {
		return true
	}
	r.Abs(r)
	big29 := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(28), nil))
	if r.Cmp(new(big.Rat).Mul(limit, big29)) >= 0 {
		return true
	}
	big21 := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(21), nil))
	return q.Format == resource.DecimalSI && r.Cmp(big21) >= 0
}

func quantities(w *writer, rng *rand.Rand) {
	type row struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical,omitempty"`
		Format    string `json:"format,omitempty"`
		Milli     *int64 `json:"milli,omitempty"`
		Err       bool   `json:"err,omitempty"`
	}
	for _, s := range quantityInputs(rng) {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			w.put(row{Input: s, Err: true})
			continue
		}
		if outOfScope(q) {
			continue
		}
		n, suf := q.CanonicalizeBytes(nil)
		r := row{Input: s, Canonical: string(n) + string(suf), Format: string(q.Format)}
		// MilliValue is ceil(q*1000) for non-negative values; for negative
		// ones Go's rounding depends on the internal representation.
		if q.IsZero() {
			var zero int64
			r.Milli = &zero
		} else if f := q.AsApproximateFloat64(); f > 0 && f < 1e12 {
			m := q.MilliValue()
			r.Milli = &m
		}
		w.put(r)
	}
}

// --------------------------------------------------------------------- names

func names(w *writer, rng *rand.Rand) {
	type row struct {
		Kind   string   `json:"kind"`
		Input  string   `json:"input"`
		Errors []string `json:"errors"`
	}
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	inputs := []string{
		"", "a", "A", "0", "-", "a-b", "a--b", "-a", "a-", "a.b", "a..b", ".a", "a.", "a_b", "_a", "a b",
		"my-name", "123-abc", "My-Name", "abc-123", "1abc", "a/b", "/a", "a/", "a/b/c", "example.com/name",
		"example.com/Name_1.x", "Example.com/name", "example.com/", "-x.com/name", "app.kubernetes.io/name",
		"kubernetes.io/os", "x/-a", "x/a-", "a@b", "ünïcode", "a\u00a0b", "MyValue", "my_value", "12345",
		"v1.2.3", "a.b-c_d", "*", "a*b", "a:b", "a;b", "a=b", "a,b",
		long(63, "a"), long(64, "a"), long(253, "a"), long(254, "a"),
		long(62, "a") + "-", long(64, "A"), strings.Repeat("abcdefghij.", 23) + "abc",
		strings.Repeat("abcdefghij.", 23) + "abcd", strings.Repeat("a", 64) + ".com",
		strings.Repeat("a", 250) + ".com", "p/" + long(63, "n"), "p/" + long(64, "n"),
		strings.Repeat("x", 254) + "/n",
	}
	alphabet := "abcXYZ019-_./ "
	for i := 0; i < 300; i++ {
		var b strings.Builder
		for j := rng.Intn(12); j > 0; j-- {
			b.WriteByte(alphabet[rng.Intn(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	kinds := []struct {
		name string
		fn   func(string) []string
	}{
		{"dns1123_label", validation.IsDNS1123Label},
		{"dns1123_subdomain", validation.IsDNS1123Subdomain},
		{"dns1035_label", validation.IsDNS1035Label},
		{"qualified_name", validation.IsQualifiedName},
		{"label_value", validation.IsValidLabelValue},
	}
	for _, k := range kinds {
		for _, s := range inputs {
			errs := k.fn(s)
			if errs == nil {
				errs = []string{}
			}
			w.put(row{Kind: k.name, Input: s, Errors: errs})
		}
	}
}

// ----------------------------------------------------------------- selectors

func selectors(w *writer) {
	type row struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical,omitempty"`
		Err       bool   `json:"err,omitempty"`
	}
	inputs := []string{
		"", " ", "a", "!a", "a=b", "a==b", "a!=b", "a=", "a!=", "a==", "a in (b)", "a in (b,c)",
		"a in (c,b,b)", "a notin (b)", "a in ()", "a in (,)", "a in (,b)", "a in (b,)", "a in (b,,c)",
		"x>1", "x<1", "x>-1", "x>a", "x > 1", "b=1,a=2", "b,a,!c", "a=b,a=c", " a = b , c in ( d ) ",
		"in in (in)", "notin notin (notin)", "in=notin", "a in b", "a in (b", "a in (b c)", "a b",
		"a=b c", "a,", ",a", "a,,b", "=a", "!", "!=a", "a==b==c", "a=b=c", "a=(b)", "a>>1", "a<<1",
		"a>=1", "a=!b", "!a=b", "!a,b", "a!", "a(b)", "example.com/a=b", "example.com/a/b=c",
		"Example.com/a=b", "a=B_1.x", "a=-b", "a=b-", "a=" + strings.Repeat("v", 63),
		"a=" + strings.Repeat("v", 64), strings.Repeat("k", 64) + "=v", "a\tin\t(b)", "a\n=b",
		"tier notin (cache), env in (staging,prod),app=web", "x in (notin,in)", "a in(b)", "a notin(b)",
		"a in (b)c", "(a)", "a=)", "a=,b", "a in (b),", "!!a", "a=é",
	}
	for _, s := range inputs {
		sel, err := labels.Parse(s)
		if err != nil {
			w.put(row{Input: s, Err: true})
			continue
		}
		w.put(row{Input: s, Canonical: sel.String()})
	}
}

// ----------------------------------------------------------------- durations

func durations(w *writer, rng *rand.Rand) {
	type row struct {
		Input  *string `json:"input,omitempty"`
		Nanos  *int64  `json:"nanos,omitempty"`
		Err    bool    `json:"err,omitempty"`
		String string  `json:"string,omitempty"`
	}
	inputs := []string{
		"0", "-0", "+0", "", "-", "1", "s", ".s", "1.s", ".5s", "1.5h", "1h30m", "250ms", "-2s", "1us",
		"1µs", "1μs", "1ns", "1d", "1.5", "5s", "3000000h", "2562047h", "2562048h",
		"9223372036854775807ns", "9223372036854775808ns", "-9223372036854775808ns",
		"-9223372036854775809ns", "1h-1m", "1 s", " 1s", "1s ", "+-1s", "1h1m1s1ms1us1ns",
		"0.3333333333333333333h", "1.0000000000000000000001s", "0.1ns", "1.9ns", "100000000000000000000ns",
		"1.123456789123456789s", "15m0.5s", "1e3s", "1hh", "1h0", "0h0m0s", "00001s", "1.5.5s",
	}
	units := []string{"ns", "us", "µs", "ms", "s", "m", "h"}
	for i := 0; i < 300; i++ {
		var b strings.Builder
		if rng.Intn(6) == 0 {
			b.WriteString("-")
		}
		for j := rng.Intn(3) + 1; j > 0; j-- {
			b.WriteString(fmt.Sprint(rng.Intn(1000)))
			if rng.Intn(3) == 0 {
				b.WriteString("." + fmt.Sprint(rng.Intn(100000)))
			}
			b.WriteString(units[rng.Intn(len(units))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		input := s
		d, err := time.ParseDuration(s)
		if err != nil {
			w.put(row{Input: &input, Err: true})
			continue
		}
		n := int64(d)
		w.put(row{Input: &input, Nanos: &n, String: d.String()})
	}
	values := []int64{1, 999, 1000, 1001, 1100, 999999, 1000000, 2200000, 999999999, 1000000000,
		3300000000, 59999999999, 60000000000, 3599999999999, 3600000000000, 3661001001001,
		1<<63 - 1, -1 << 63, -1, -1500000}
	for i := 0; i < 300; i++ {
		values = append(values, rng.Int63n(1<<uint(rng.Intn(62)+1))*int64(1-2*rng.Intn(2)))
	}
	for _, v := range values {
		n := v
		w.put(row{Nanos: &n, String: time.Duration(v).String()})
	}
}
