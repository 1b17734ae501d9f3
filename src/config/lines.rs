//! A config value: its lines, stored compactly, with where each came from.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One config line and where it came from (for error messages that name file and line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The trimmed text.
    pub text: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Its 1-based line number (0 for values from the TOML file).
    pub line: usize,
}

/// One config line and where it came from, borrowed from its value: what [`Lines::each`]
/// yields, without the copies an [`Entry`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The trimmed text.
    pub text: &'a str,
    /// The file it was read from.
    pub file: &'a Path,
    /// Its 1-based line number (0 for values from the TOML file).
    pub line: usize,
}

impl Entry {
    /// The same line, borrowed.
    pub fn borrowed(&self) -> EntryRef<'_> {
        EntryRef {
            text: &self.text,
            file: &self.file,
            line: self.line,
        }
    }
}

/// A config value: the list of its lines.
#[derive(Debug, Clone, Default)]
pub struct Lines(pub(super) Rc<Store>);

/// The lines of a value, compact: a list such as `rcpthosts` can have a million lines,
/// and each session holds it. The texts share one buffer and the file names are kept
/// once per file, so a list costs little more than its text (not an allocation and a
/// copy of the file name per line). [`Entry`] values are made only when asked for.
#[derive(Debug, Default)]
pub(super) struct Store {
    /// Every line's text, one after the other.
    text: String,
    /// Where each line's text ends in `text`.
    ends: Vec<usize>,
    /// Each line's number in its file (0 for values from the TOML file).
    numbers: Vec<u32>,
    /// `(index of the first line from it, file)`, in order.
    files: Vec<(usize, PathBuf)>,
    /// [`Lines::entries`], made on first use.
    entries: OnceCell<Vec<Entry>>,
}

impl Store {
    pub(super) fn push(&mut self, text: &str, file: &Path, line: usize) {
        // Compared as bytes: `Path`'s own comparison parses both into components, for
        // every line of every file. (Two spellings of one path just start a new run.)
        if self
            .files
            .last()
            .is_none_or(|(_, f)| f.as_os_str() != file.as_os_str())
        {
            self.files.push((self.ends.len(), file.to_path_buf()));
        }
        self.text.push_str(text);
        self.ends.push(self.text.len());
        self.numbers.push(u32::try_from(line).unwrap_or(u32::MAX));
    }

    /// Makes room for about `lines` more lines of `text` bytes in all (a file's size and
    /// line count), so that the buffers are not grown a line at a time.
    pub(super) fn reserve(&mut self, text: usize, lines: usize) {
        self.text.reserve(text);
        self.ends.reserve(lines);
        self.numbers.reserve(lines);
    }

    /// Gives back what the buffers reserved beyond their lines (the value is kept for the
    /// whole session) when that is worth a copy: not the few bytes of line ends and
    /// blanks a small file's buffers were sized with.
    pub(super) fn shrink_to_fit(&mut self) {
        const WORTH_IT: usize = 4096;
        if self.text.capacity() - self.text.len() > WORTH_IT {
            self.text.shrink_to_fit();
        }
        if (self.ends.capacity() - self.ends.len()) * size_of::<usize>() > WORTH_IT {
            self.ends.shrink_to_fit();
        }
        if (self.numbers.capacity() - self.numbers.len()) * size_of::<u32>() > WORTH_IT {
            self.numbers.shrink_to_fit();
        }
    }

    fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn file(&self, i: usize) -> &Path {
        let run = self.files.partition_point(|(first, _)| *first <= i);
        self.files
            .get(run.wrapping_sub(1))
            .map_or(Path::new(""), |(_, f)| f)
    }
}

impl Lines {
    /// The lines' texts.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.0.ends.len()).map(|i| self.0.text(i))
    }

    /// The first line, as qpsmtpd's scalar `config()` returns.
    pub fn first(&self) -> Option<&str> {
        (!self.0.ends.is_empty()).then(|| self.0.text(0))
    }

    /// The lines with their origins, borrowed: no copy of any text or file name (a
    /// plugin line is read once, at start, so [`Lines::entries`] would copy it for
    /// nothing).
    pub fn each(&self) -> impl Iterator<Item = EntryRef<'_>> {
        (0..self.0.ends.len()).map(|i| self.entry(i))
    }

    /// The first line with its origin, borrowed.
    pub fn first_entry(&self) -> Option<EntryRef<'_>> {
        (!self.0.ends.is_empty()).then(|| self.entry(0))
    }

    fn entry(&self, i: usize) -> EntryRef<'_> {
        EntryRef {
            text: self.0.text(i),
            file: self.0.file(i),
            line: self.0.numbers[i] as usize,
        }
    }

    /// The lines with their origins.
    pub fn entries(&self) -> &[Entry] {
        self.0.entries.get_or_init(|| {
            (0..self.0.ends.len())
                .map(|i| Entry {
                    text: self.0.text(i).to_string(),
                    file: self.0.file(i).to_path_buf(),
                    line: self.0.numbers[i] as usize,
                })
                .collect()
        })
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.0.ends.len()
    }

    /// Is the value unset or empty?
    pub fn is_empty(&self) -> bool {
        self.0.ends.is_empty()
    }

    /// A value made of the given lines (for the `config` hook and tests).
    pub fn from_texts(texts: &[String], origin: &Path) -> Lines {
        let mut store = Store::default();
        for t in texts {
            store.push(t, origin, 0);
        }
        Lines(Rc::new(store))
    }
}
