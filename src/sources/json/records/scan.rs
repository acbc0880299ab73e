//! The fast path of the record splitter: 64 bytes of an object scanned at once, one bit per byte
//! for each byte that matters (quotes, braces, backslashes, line breaks), instead of byte by
//! byte.

/// Bytes of an object scanned at once by [`scan_block`].
pub(super) const BLOCK: usize = 64;

/// What [`scan_block`] found in 64 bytes of an object.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Block {
    /// The object goes on past the block.
    Inside,
    /// The object's closing brace is the block's byte `k`.
    Ends(usize),
    /// Byte `k` is a line break inside a string.
    CutShort(usize),
    /// The block's first backslash is byte `k`: left to the byte-by-byte scan, which knows what
    /// it escapes (in a string) or that it escapes nothing (outside one).
    Escape(usize),
}

/// One bit per byte of a block (bit `k` for byte `k`), for each byte the scan looks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    backslashes: u64,
    quotes: u64,
    opens: u64,
    closes: u64,
    breaks: u64,
}

impl Masks {
    /// The masks of `block`, 16 bytes at a time with SSE2 (part of every x86-64 processor).
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; BLOCK]) -> Self {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut masks = Masks::default();
        for (lane, bytes) in block.chunks_exact(16).enumerate() {
            // SAFETY: `bytes` is 16 readable bytes (an unaligned load is allowed); SSE2 is
            // enabled on every x86-64 target, so its intrinsics are available.
            let bits = |byte: u8| unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
                let equal = _mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8));
                u64::from(_mm_movemask_epi8(equal) as u16) << (16 * lane)
            };
            masks.backslashes |= bits(b'\\');
            masks.quotes |= bits(b'"');
            masks.opens |= bits(b'{');
            masks.closes |= bits(b'}');
            masks.breaks |= bits(b'\n');
        }
        masks
    }

    /// The masks of `block`, byte by byte.
    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; BLOCK]) -> Self {
        let mut masks = Masks::default();
        for (k, &b) in block.iter().enumerate() {
            let bit = 1u64 << k;
            match b {
                b'\\' => masks.backslashes |= bit,
                b'"' => masks.quotes |= bit,
                b'{' => masks.opens |= bit,
                b'}' => masks.closes |= bit,
                b'\n' => masks.breaks |= bit,
                _ => {}
            }
        }
        masks
    }
}

/// Bit `k` = the parity of the set bits at `0..=k`: from a mask of quotes, the bytes inside
/// strings (the opening quote in, the closing one out).
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// Scans 64 bytes of an object without escapes at once, as bit masks (one bit per byte): the
/// quotes give the bytes inside strings, and only the braces and line breaks outside / inside
/// them are looked at one by one. Updates `in_string` and `depth` as the byte-by-byte scan would
/// (fully when the object goes on, up to the event otherwise).
pub(super) fn scan_block(block: &[u8; BLOCK], in_string: &mut bool, depth: &mut u32) -> Block {
    let Masks {
        backslashes,
        quotes,
        opens,
        closes,
        breaks,
    } = Masks::of(block);
    if backslashes != 0 {
        return Block::Escape(backslashes.trailing_zeros() as usize);
    }
    let mut inside = prefix_xor(quotes);
    if *in_string {
        inside = !inside;
    }
    let cut = breaks & inside;
    let mut events = ((opens | closes) & !inside) | cut;
    while events != 0 {
        let k = events.trailing_zeros() as usize;
        let bit = 1u64 << k;
        if cut & bit != 0 {
            return Block::CutShort(k);
        }
        if opens & bit != 0 {
            *depth += 1;
        } else {
            *depth -= 1;
            if *depth == 0 {
                return Block::Ends(k);
            }
        }
        events &= events - 1;
    }
    *in_string = inside >> (BLOCK - 1) == 1;
    Block::Inside
}
