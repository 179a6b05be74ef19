package pgstore

import "math"

// The in-memory index keeps embeddings as IEEE 754 half precision: half the
// memory, and half the memory traffic of a scan, which is what bounds its
// speed. Unit vectors' components lose nothing that matters to a ranking
// (a relative error of 2^-11 per component); PostgreSQL keeps the float32s.

// toHalf rounds f to the nearest half (ties to even). Magnitudes below the
// smallest normal half (6.1e-5) become zero: their products with a unit
// query are below any score difference that could change a ranking.
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case exp >= 31:
		return sign | 0x7c00 // ±Inf; unit vectors never get here
	case exp <= 0:
		return sign
	}
	h := uint32(exp)<<10 | mant>>13
	if rem := mant & 0x1fff; rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is still the right rounding
	}
	// exp is in [1, 30] here, so h <= 30<<10|0x3ff plus a carry: 0x7c00 at
	// most, which fits the 15 bits beside the sign.
	return sign | uint16(h) //nolint:gosec // h <= 0x7c00, see above

}

// fromHalf widens a half to float32 exactly.
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal
		return math.Float32frombits(sign) + float32(mant)*(1.0/(1<<24))*signOf(h)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp-15+127)<<23 | mant<<13)
}

func signOf(h uint16) float32 {
	if h&0x8000 != 0 {
		return -1
	}
	return 1
}

// dotHalfGeneric is the portable q·h.
func dotHalfGeneric(q []float32, h []uint16) float32 {
	h = h[:len(q)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(q); i += 4 {
		s0 += q[i] * fromHalf(h[i])
		s1 += q[i+1] * fromHalf(h[i+1])
		s2 += q[i+2] * fromHalf(h[i+2])
		s3 += q[i+3] * fromHalf(h[i+3])
	}
	for ; i < len(q); i++ {
		s0 += q[i] * fromHalf(h[i])
	}
	return (s0 + s1) + (s2 + s3)
}
