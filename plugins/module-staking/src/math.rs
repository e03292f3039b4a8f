//! Checked arithmetic on amounts: `a × b / c` without overflowing in the middle, and basis
//! points.
//!
//! Written here rather than pulled in (a 256-bit integer crate) because it is one function of
//! thirty lines, tested below against `u128` where that does not overflow.

/// Basis points in one whole (100%).
pub const BPS: u16 = 10_000;

/// `⌊a × b / c⌋` with a 256-bit intermediate product; `None` if `c` is 0 or the quotient does
/// not fit in `u128`.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    if let Some(p) = a.checked_mul(b) {
        return Some(p / c);
    }
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    // Each term is below 2^64, so the sum fits.
    let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let lo = (p00 & MASK) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    if hi >= c {
        return None;
    }
    // Long division of (hi, lo) by c, one bit at a time; the remainder stays below c.
    let (mut rem, mut quotient) = (hi, 0u128);
    for i in (0..128).rev() {
        let carry = rem >> 127;
        rem = (rem << 1) | ((lo >> i) & 1);
        if carry == 1 || rem >= c {
            rem = rem.wrapping_sub(c);
            quotient |= 1 << i;
        }
    }
    Some(quotient)
}

/// `⌊amount × bps / 10000⌋` (never more than `amount` for `bps ≤ 10000`).
pub fn bps_of(amount: u128, bps: u16) -> u128 {
    // Callers pass bps ≤ 10000 (checked where it enters), so the quotient is at most `amount`.
    mul_div(amount, u128::from(bps), u128::from(BPS)).unwrap_or(u128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_div_matches_plain_arithmetic_and_survives_wide_products() {
        for (a, b, c) in [(7u128, 3u128, 2u128), (0, 5, 1), (1_000, 999, 1_000), (u64::MAX as u128, u64::MAX as u128, 3)] {
            assert_eq!(mul_div(a, b, c), Some(a * b / c));
        }
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 3, 4), Some(u128::MAX / 4 * 3 + 2));
        assert_eq!(mul_div(1 << 100, 1 << 100, 1 << 90), Some(1 << 110));
        assert_eq!(mul_div(u128::MAX, 2, 1), None, "quotient overflows");
        assert_eq!(mul_div(1, 1, 0), None);
        assert_eq!(bps_of(1_000, 500), 50);
        assert_eq!(bps_of(999, 1), 0);
        assert_eq!(bps_of(u128::MAX, 10_000), u128::MAX);
    }
}
