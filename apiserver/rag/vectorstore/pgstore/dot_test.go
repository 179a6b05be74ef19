package pgstore

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDotMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 31, 32, 33, 100, 1536, 3072} {
		a, b := make([]float32, n), make([]float32, n)
		var want float64
		for i := range a {
			a[i], b[i] = r.Float32()-0.5, r.Float32()-0.5
			want += float64(a[i]) * float64(b[i])
		}
		if got := dot(a, b); math.Abs(float64(got)-want) > 1e-3 {
			t.Errorf("n=%d: dot=%v want %v", n, got, want)
		}
		if got := dotGeneric(a, b); math.Abs(float64(got)-want) > 1e-3 {
			t.Errorf("n=%d: dotGeneric=%v want %v", n, got, want)
		}
	}
}

func TestHalfConversion(t *testing.T) {
	for _, tc := range []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {0.5, 0x3800}, {65504, 0x7bff},
		{1.0 / 3, 0x3555},      // rounds to nearest
		{1 + 1.0/2048, 0x3c00}, // a tie rounds to even
		{1 + 3.0/2048, 0x3c02}, // a tie rounds to even (up)
		{1e-6, 0},              // below the smallest normal: zero
	} {
		if got := toHalf(tc.f); got != tc.h {
			t.Errorf("toHalf(%v) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		f := r.Float32()*2 - 1
		back := fromHalf(toHalf(f))
		if math.Abs(float64(back-f)) > math.Abs(float64(f))/2048+6.2e-5 {
			t.Fatalf("%v → %v: error beyond half a unit in the last place", f, back)
		}
	}
}

func TestDotHalfMatchesFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 31, 32, 33, 100, 1536} {
		q, v := make([]float32, n), make([]float32, n)
		h := make([]uint16, n)
		for i := range q {
			q[i], v[i] = r.Float32()-0.5, r.Float32()-0.5
			h[i] = toHalf(v[i])
		}
		exact := dotGeneric(q, v)
		if got := dotHalf(q, h); math.Abs(float64(got-exact)) > 2e-3 {
			t.Errorf("n=%d: dotHalf=%v, float32 dot=%v", n, got, exact)
		}
		if a, b := dotHalf(q, h), dotHalfGeneric(q, h); math.Abs(float64(a-b)) > 1e-4 {
			t.Errorf("n=%d: SIMD %v != generic %v", n, a, b)
		}
	}
}
