//! A position in one JSON record's text, and the grammar the direct decoder and the sample
//! check walk it by: no looser than serde_json's (what schema inference accepts), and declining
//! what it does not decode exactly as arrow-json does (a surrogate escape, a separator arrow-json
//! tolerates, deep nesting) so that the caller can ask a stricter judge.

/// Nesting depth of skipped values beyond which a batch is left to arrow-json.
const MAX_DEPTH: usize = 64;

/// Bytes looked at one by one for the end of a string before a vectorised search: most values
/// in exports (ids, types, times) are shorter, and the search's setup costs more than they do.
const SHORT_STRING: usize = 32;

/// Offset in `bytes` of the first quote or backslash, checking the bytes before it: a control
/// character must be escaped in a JSON string (arrow-json takes one as it is; serde_json, and so
/// schema inference, refuses the record), so meeting one declines.
#[inline]
fn quote_or_backslash(bytes: &[u8]) -> Step<usize> {
    let head = bytes.len().min(SHORT_STRING);
    // Eight bytes at a time (most strings end within the first few words), then byte by byte.
    let mut at = 0;
    while at + 8 <= head {
        let word = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
        let special = string_stops(word);
        if special != 0 {
            let k = at + (special.trailing_zeros() / 8) as usize;
            return if bytes[k] < 0x20 {
                Err(Declined)
            } else {
                Ok(k)
            };
        }
        at += 8;
    }
    if let Some(k) = bytes[at..head]
        .iter()
        .position(|b| matches!(b, b'"' | b'\\') || *b < 0x20)
    {
        let k = at + k;
        return if bytes[k] < 0x20 {
            Err(Declined)
        } else {
            Ok(k)
        };
    }
    let k = head + memchr::memchr2(b'"', b'\\', &bytes[head..]).ok_or(Declined)?;
    if bytes[head..k].iter().any(|b| *b < 0x20) {
        return Err(Declined);
    }
    Ok(k)
}

/// The high bit of each byte of `word` (little-endian) that may be a quote, a backslash or a
/// control character. The lowest one set is exact (a borrow only marks bytes above a true match),
/// which is the only one read.
#[inline]
fn string_stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * n as u64) & !w & HIGH;
    below(word ^ (ONES * b'"' as u64), 1)
        | below(word ^ (ONES * b'\\' as u64), 1)
        | below(word, 0x20)
}

/// A member name between its quotes, as a record spells it when none of its characters needs an
/// escape: then matching these bytes is reading the name.
#[derive(Debug, Clone)]
pub struct QuotedName {
    bytes: Box<[u8]>,
    /// The first (up to) 16 bytes, and a mask of the bytes that are the name's: one wide compare
    /// instead of a call to compare bytes (most names are short).
    head: u128,
    mask: u128,
}

impl QuotedName {
    /// `"name"`; None when a character of `name` would have to be escaped.
    pub fn new(name: &[u8]) -> Option<Self> {
        if name.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
            return None;
        }
        let mut bytes = Vec::with_capacity(name.len() + 2);
        bytes.push(b'"');
        bytes.extend_from_slice(name);
        bytes.push(b'"');
        let mut head = [0u8; 16];
        let n = bytes.len().min(16);
        head[..n].copy_from_slice(&bytes[..n]);
        let mask = if n == 16 {
            u128::MAX
        } else {
            (1u128 << (8 * n)) - 1
        };
        Some(Self {
            bytes: bytes.into(),
            head: u128::from_le_bytes(head),
            mask,
        })
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether `text` starts with this name.
    #[inline]
    fn starts(&self, text: &[u8]) -> bool {
        match text.first_chunk::<16>() {
            Some(first) if self.bytes.len() <= 16 => {
                u128::from_le_bytes(*first) & self.mask == self.head
            }
            _ => text.starts_with(&self.bytes),
        }
    }
}

/// A record this decoder does not decode (arrow-json will, or will say why not).
#[derive(Debug)]
pub struct Declined;

pub type Step<T = ()> = Result<T, Declined>;

/// A position in one record's text.
#[derive(Clone)]
pub struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    /// Moves past `n` bytes already looked at.
    pub fn advance(&mut self, n: usize) {
        self.at += n;
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    pub fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    pub fn expect(&mut self, byte: u8) -> Step {
        match self.next() {
            Some(b) if b == byte => Ok(()),
            _ => Err(Declined),
        }
    }

    /// Skips JSON whitespace (the four characters arrow-json skips too).
    pub fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// A member's name as written (escapes left in) and the colon after it.
    pub fn key(&mut self) -> Step<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = self.string_end()?;
        self.blanks();
        self.expect(b':')?;
        self.blanks();
        Ok(&self.text[start..end])
    }

    /// When the next member's name is `name`, moves past it and the colon after it and returns
    /// true; otherwise stays and returns false.
    pub fn known_key(&mut self, name: &QuotedName) -> Step<bool> {
        if !name.starts(&self.bytes()[self.at..]) {
            return Ok(false);
        }
        self.at += name.len();
        self.blanks();
        self.expect(b':')?;
        self.blanks();
        Ok(true)
    }

    /// After an opening `{` or `[`: the members up to `close`, each read by `member`, separated
    /// as JSON separates them (the looser separators arrow-json accepts decline).
    pub fn members(&mut self, close: u8, mut member: impl FnMut(&mut Self) -> Step) -> Step {
        self.blanks();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(());
        }
        loop {
            member(self)?;
            self.blanks();
            match self.next() {
                Some(b',') => self.blanks(),
                Some(b) if b == close => return Ok(()),
                _ => return Err(Declined),
            }
        }
    }

    /// Only blanks are left.
    pub fn end(&mut self) -> Step {
        self.blanks();
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// After the opening quote: moves past the closing quote, checking every escape is one
    /// arrow-json reads the same way; returns the offset of the closing quote.
    pub fn string_end(&mut self) -> Step<usize> {
        let bytes = self.bytes();
        loop {
            let rest = &bytes[self.at..];
            let k = quote_or_backslash(rest)?;
            self.at += k + 1;
            if rest[k] == b'"' {
                return Ok(self.at - 1);
            }
            self.escape()?;
        }
    }

    /// After a backslash: the escaped character (surrogates declined).
    fn escape(&mut self) -> Step<char> {
        Ok(match self.next().ok_or(Declined)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.text.get(self.at..self.at + 4).ok_or(Declined)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Declined);
                }
                self.at += 4;
                let code = u32::from_str_radix(hex, 16).map_err(|_| Declined)?;
                char::from_u32(code).ok_or(Declined)?
            }
            _ => return Err(Declined),
        })
    }

    /// After the opening quote: the string's text, unescaped into `scratch` when it has escapes.
    pub fn string<'s>(&mut self, scratch: &'s mut String) -> Step<&'s str>
    where
        'a: 's,
    {
        let start = self.at;
        let bytes = self.bytes();
        let first = quote_or_backslash(&bytes[start..])?;
        if bytes[start + first] == b'"' {
            self.at = start + first + 1;
            return Ok(&self.text[start..start + first]);
        }
        scratch.clear();
        let mut from = start;
        loop {
            let k = quote_or_backslash(&bytes[from..])?;
            scratch.push_str(&self.text[from..from + k]);
            self.at = from + k + 1;
            if bytes[from + k] == b'"' {
                return Ok(scratch.as_str());
            }
            let c = self.escape()?;
            scratch.push(c);
            from = self.at;
        }
    }

    /// At a number's first character: its literal, if it is a plain JSON number, and whether it
    /// is an integer (no fraction, no exponent).
    pub fn number(&mut self) -> Step<(&'a str, bool)> {
        let bytes = self.bytes();
        let start = self.at;
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        let mut at = start;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let whole_digits = match bytes.get(at) {
            Some(b'0') => {
                at += 1;
                1
            }
            Some(b'1'..=b'9') => digits(&mut at),
            _ => return Err(Declined),
        };
        let mut integral = true;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            integral = false;
            if digits(&mut at) == 0 {
                return Err(Declined);
            }
        }
        let mut exponent = 0usize;
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            integral = false;
            let positive = match bytes.get(at) {
                Some(b'-') => {
                    at += 1;
                    false
                }
                Some(b'+') => {
                    at += 1;
                    true
                }
                _ => true,
            };
            let from = at;
            if digits(&mut at) == 0 {
                return Err(Declined);
            }
            if positive {
                exponent = self.text[from..at].parse().unwrap_or(usize::MAX);
            }
        }
        // arrow-json reads any run of these as the number: let it judge such runs.
        if matches!(
            bytes.get(at),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            return Err(Declined);
        }
        let literal = &self.text[start..at];
        // Under 10^(digits + exponent): past f64's range (~1.8e308) only beyond 10^300, where
        // serde_json (so schema inference) refuses the number and arrow-json does not: the judge
        // decides those.
        if whole_digits.saturating_add(exponent) > 300
            && !literal.parse::<f64>().is_ok_and(f64::is_finite)
        {
            return Err(Declined);
        }
        self.at = at;
        Ok((literal, integral))
    }

    /// Moves past `word` (the rest of a literal whose first letter was read).
    pub fn literal(&mut self, word: &str) -> Step {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// Moves past one value of a field no column reads.
    pub fn skip_value(&mut self, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(Declined);
        }
        match self.next().ok_or(Declined)? {
            b'"' => self.string_end().map(drop),
            b'-' | b'0'..=b'9' => {
                self.at -= 1;
                self.number().map(drop)
            }
            b't' => self.literal("rue"),
            b'f' => self.literal("alse"),
            b'n' => self.literal("ull"),
            b'{' => self.members(b'}', |at| {
                at.key()?;
                at.skip_value(depth + 1)
            }),
            b'[' => self.members(b']', |at| at.skip_value(depth + 1)),
            _ => Err(Declined),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wide compare against `starts_with`, for names of every length around 16 bytes and
    /// texts shorter and longer than the name.
    #[test]
    fn quoted_names_match_exactly_their_bytes() {
        for len in 0..24 {
            let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let quoted = QuotedName::new(&name).expect("plain name");
            let mut spelled = vec![b'"'];
            spelled.extend_from_slice(&name);
            spelled.extend_from_slice(b"\":1,\"zzzzzzzzzzzzzzzzzzz\":2}");
            for cut in 0..spelled.len() {
                let text = &spelled[..cut];
                assert_eq!(
                    quoted.starts(text),
                    text.starts_with(&quoted.bytes),
                    "{len} {cut}"
                );
                let mut other = spelled.clone();
                other[cut] ^= 1;
                assert_eq!(
                    quoted.starts(&other),
                    other.starts_with(&quoted.bytes),
                    "{len} {cut}"
                );
            }
            assert!(quoted.starts(&spelled));
        }
        assert!(QuotedName::new(b"a\"b").is_none() && QuotedName::new(b"a\\b").is_none());
        assert!(QuotedName::new(b"tab\there").is_none());
    }

    /// The word-at-a-time search against a byte-by-byte one, at every position and length.
    #[test]
    fn the_first_quote_backslash_or_control_character_is_found_exactly() {
        let specials = [b'"', b'\\', 0x00, 0x1f, b'\n'];
        let plain = [b'a', b' ', 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'];
        let mut random = crate::test_random::Random(0x00C0_FFEE);
        for _ in 0..20_000 {
            let len = 1 + random.below(70);
            let mut bytes: Vec<u8> = (0..len).map(|_| plain[random.below(plain.len())]).collect();
            for _ in 0..random.below(3) {
                let at = random.below(len);
                bytes[at] = specials[random.below(specials.len())];
            }
            let want = match bytes
                .iter()
                .position(|b| matches!(b, b'"' | b'\\') || *b < 0x20)
            {
                Some(k) if bytes[k] < 0x20 => None,
                Some(k) => Some(k),
                None => None,
            };
            assert_eq!(quote_or_backslash(&bytes).ok(), want, "{bytes:?}");
        }
    }
}
