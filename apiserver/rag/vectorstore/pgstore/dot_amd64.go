package pgstore

import "golang.org/x/sys/cpu"

var haveAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
var haveF16C = haveAVX2FMA && cpu.X86.HasF16C

// dotAVX2 sums a[i]*b[i] over the first n&^31 elements.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

// dotHalfAVX2 sums q[i]*float32(h[i]) over the first n&^31 elements.
//
//go:noescape
func dotHalfAVX2(q *float32, h *uint16, n int) float32

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	if !haveAVX2FMA || len(a) < 32 {
		return dotGeneric(a, b)
	}
	n := len(a) &^ 31
	s := dotAVX2(&a[0], &b[0], n)
	if n < len(a) {
		s += dotGeneric(a[n:], b[n:])
	}
	return s
}

func dotHalf(q []float32, h []uint16) float32 {
	h = h[:len(q)]
	if !haveF16C || len(q) < 32 {
		return dotHalfGeneric(q, h)
	}
	n := len(q) &^ 31
	s := dotHalfAVX2(&q[0], &h[0], n)
	if n < len(q) {
		s += dotHalfGeneric(q[n:], h[n:])
	}
	return s
}
