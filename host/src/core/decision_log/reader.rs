//! Reading decision logs back: gzip (one or several members, as the writer and the
//! simulator produce them) or plain JSON lines, detected by the content. Errors name the
//! file and the line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::schema::Record;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: {detail}")]
    File { file: String, detail: String },
    #[error("{file}:{line}: {detail}")]
    Line {
        file: String,
        line: usize,
        detail: String,
    },
}

/// A record and where it was read.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub record: Record,
}

/// The records of one file, in order. A gzip file whose end is missing (the writer's
/// active file, or one cut short by a crash) yields every whole line before the cut.
pub fn read(path: &Path) -> Result<Records, ReadError> {
    let shown = path.display().to_string();
    let mut file = File::open(path).map_err(|e| ReadError::File {
        file: shown.clone(),
        detail: e.to_string(),
    })?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| ReadError::File {
        file: shown.clone(),
        detail: e.to_string(),
    })?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let chained = head.chain(file);
    let inner: Box<dyn BufRead> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(256 << 10, MultiGzDecoder::new(chained)))
    } else {
        Box::new(BufReader::with_capacity(256 << 10, chained))
    };
    Ok(Records {
        path: path.to_path_buf(),
        shown,
        inner,
        line: 0,
        buf: Vec::new(),
        done: false,
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub struct Records {
    path: PathBuf,
    shown: String,
    inner: Box<dyn BufRead>,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl Iterator for Records {
    type Item = Result<Located, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            let got = match self.inner.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(n) => n,
                // A gzip stream cut short: what came before the cut is whole lines
                // (a partial line is dropped below), nothing after it is readable.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::Line {
                        file: self.shown.clone(),
                        line: self.line + 1,
                        detail: e.to_string(),
                    }));
                }
            };
            self.line += 1;
            let whole = self.buf.ends_with(b"\n");
            if !whole && got > 0 {
                // The last line without its newline: whole in a plain file, cut short in
                // a compressed one being written. Only a line that parses is kept.
                self.done = true;
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim_end_matches(['\n', '\r']),
                Err(e) => {
                    return Some(Err(ReadError::Line {
                        file: self.shown.clone(),
                        line: self.line,
                        detail: format!("not UTF-8: {e}"),
                    }));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            return match Record::from_line(text) {
                Ok(record) => Some(Ok(Located {
                    file: self.path.clone(),
                    line: self.line,
                    record,
                })),
                Err(_) if !whole => None,
                Err(detail) => Some(Err(ReadError::Line {
                    file: self.shown.clone(),
                    line: self.line,
                    detail,
                })),
            };
        }
    }
}

/// The files named on a command line: a directory stands for its log files (oldest
/// first), a file for itself.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let files = super::writer::log_files(p).map_err(|e| ReadError::File {
                file: p.display().to_string(),
                detail: e.to_string(),
            })?;
            if files.is_empty() {
                return Err(ReadError::File {
                    file: p.display().to_string(),
                    detail: format!(
                        "no decision-log files ({}*{}) in this directory",
                        super::writer::FILE_PREFIX,
                        super::writer::FILE_SUFFIX
                    ),
                });
            }
            out.extend(files.into_iter().map(|(f, _)| f));
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::super::schema::tests_support::record_with;
    use super::*;

    fn lines(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(record_with(i, "r").to_line());
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn plain_gzip_and_concatenated_gzip_members_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, lines(3)).unwrap();
        let gz = dir.path().join("b.jsonl.gz");
        let mut bytes = Vec::new();
        for _ in 0..2 {
            let mut e = GzEncoder::new(Vec::new(), Compression::fast());
            e.write_all(&lines(3)).unwrap();
            bytes.extend(e.finish().unwrap());
        }
        std::fs::write(&gz, bytes).unwrap();
        assert_eq!(read(&plain).unwrap().count(), 3);
        let got: Vec<Located> = read(&gz).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 6);
        assert_eq!(got[5].line, 6);
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.jsonl");
        let mut text = lines(2);
        text.extend(b"{\"v\":1,\"oops\":true}\n");
        std::fs::write(&f, text).unwrap();
        let errs: Vec<String> = read(&f)
            .unwrap()
            .filter_map(|r| r.err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!("{}:3: ", f.display())),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn a_gzip_file_cut_short_yields_its_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cut.jsonl.gz");
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(&lines(50)).unwrap();
        e.flush().unwrap();
        let first = e.get_ref().len();
        e.write_all(&lines(50)).unwrap();
        e.flush().unwrap();
        let mut bytes = e.get_ref().clone();
        // The writer's active file: sync-flushed, no trailer.
        std::fs::write(&f, &bytes).unwrap();
        assert_eq!(read(&f).unwrap().map(Result::unwrap).count(), 100);
        // Cut inside what followed the first flush: the lines before it are whole.
        bytes.truncate(first + (bytes.len() - first) / 2);
        std::fs::write(&f, &bytes).unwrap();
        let n = read(&f).unwrap().map(Result::unwrap).count();
        assert!((50..100).contains(&n), "{n}");
    }
}
