//! Where each value of a JSON document starts, by JSON path, so that validation errors found
//! after deserializing (which forgets positions) can still say line:column.
//!
//! The index is built by one scan of the text after serde_json has accepted it. Lines and
//! columns count from 1; a column counts characters, as editors show them.

use super::error::JsonPath;
use std::collections::HashMap;

/// A 1-based line and column in the file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The start position of every value in a JSON document, by path.
#[derive(Debug, Default)]
pub struct PositionIndex {
    starts: HashMap<JsonPath, Position>,
    /// Where the key of each object member starts, by the member's path.
    keys: HashMap<JsonPath, Position>,
}

/// Deeper nesting than serde_json accepts (128) is never reached; this bounds the scan anyway.
const MAX_DEPTH: usize = 256;

impl PositionIndex {
    /// Indexes `text`. On text that is not valid JSON the index holds what was scanned before
    /// the fault; it never panics.
    pub fn build(text: &str) -> Self {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            at: 0,
            line: 1,
            column: 1,
            index: PositionIndex::default(),
        };
        scanner.value(&JsonPath::root(), 0);
        scanner.index
    }

    /// The start of the value at `path`, if the document has one there.
    pub fn value_start(&self, path: &JsonPath) -> Option<Position> {
        self.starts.get(path).copied()
    }

    /// The start of the key of the object member at `path`, if the document has one there.
    pub fn key_start(&self, path: &JsonPath) -> Option<Position> {
        self.keys.get(path).copied()
    }

    /// The start of the value at `path`, or of its nearest enclosing value that was indexed.
    pub fn locate(&self, path: &JsonPath) -> Position {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(position) = self.starts.get(&p) {
                return *position;
            }
            current = p.parent();
        }
        Position { line: 1, column: 1 }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
    column: usize,
    index: PositionIndex,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if b & 0xC0 != 0x80 {
            // Continuation bytes of a UTF-8 sequence belong to the character already counted.
            self.column += 1;
        }
        Some(b)
    }

    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        self.skip_whitespace();
        (self.bump()? == wanted).then_some(())
    }

    fn value(&mut self, path: &JsonPath, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_whitespace();
        let start = self.position();
        self.index.starts.insert(path.clone(), start);
        match self.peek()? {
            b'{' => self.object(path, depth),
            b'[' => self.array(path, depth),
            b'"' => self.string().map(drop),
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.bump();
                }
                Some(())
            }
        }
    }

    fn object(&mut self, path: &JsonPath, depth: usize) -> Option<()> {
        self.bump();
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.bump();
            return Some(());
        }
        loop {
            self.skip_whitespace();
            let key_start = self.position();
            let member = path.key(&self.string()?);
            self.index.keys.insert(member.clone(), key_start);
            self.expect(b':')?;
            self.value(&member, depth + 1)?;
            self.skip_whitespace();
            match self.bump()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    fn array(&mut self, path: &JsonPath, depth: usize) -> Option<()> {
        self.bump();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.bump();
            return Some(());
        }
        let mut i = 0;
        loop {
            self.value(&path.index(i), depth + 1)?;
            i += 1;
            self.skip_whitespace();
            match self.bump()? {
                b',' => continue,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Reads a string literal and returns its decoded content.
    fn string(&mut self) -> Option<String> {
        if self.bump()? != b'"' {
            return None;
        }
        let mut raw = Vec::new();
        loop {
            match self.bump()? {
                b'"' => break,
                b'\\' => {
                    raw.push(b'\\');
                    raw.push(self.bump()?);
                }
                b => raw.push(b),
            }
        }
        let literal = format!("\"{}\"", String::from_utf8_lossy(&raw));
        serde_json::from_str(&literal).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_lines_and_characters() {
        let text = "[\n  {\"a\": 1, \"é\": [true, \"x\"],\n   \"b\\u0063\": {\"d\": null}}\n]";
        let index = PositionIndex::build(text);
        let at = |path: &JsonPath| {
            let p = index.locate(path);
            (p.line, p.column)
        };
        let first = JsonPath::root().index(0);
        assert_eq!(at(&JsonPath::root()), (1, 1));
        assert_eq!(at(&first), (2, 3));
        assert_eq!(at(&first.key("a")), (2, 9));
        assert_eq!(
            index.key_start(&first.key("a")),
            Some(Position { line: 2, column: 4 })
        );
        assert_eq!(at(&first.key("é").index(1)), (2, 24));
        assert_eq!(at(&first.key("bc").key("d")), (3, 21));
        // A path that is not in the document falls back to its nearest indexed ancestor.
        assert_eq!(at(&first.key("missing").index(3)), (2, 3));
    }

    #[test]
    fn broken_text_does_not_panic() {
        for text in ["", "{", "[1,", "{\"a\"", "{\"a\":", "\"\\", "[[[[", "}"] {
            let index = PositionIndex::build(text);
            let _ = index.locate(&JsonPath::root().index(0));
        }
    }
}
