//! Reading a file safely: a regular file only (never blocking on a FIFO), within a size limit,
//! as UTF-8, with optional strict permission checks; each failure with its [`SourceErrorKind`].

use std::io::Read;
use std::path::Path;

use super::{sha256_hex, SourceErrorKind};

/// Why a file could not be read: missing (an optional overlay is then skipped), or another
/// failure of some kind.
pub(crate) enum ReadFailure {
    Missing,
    Other(SourceErrorKind, String),
}

/// Reads a regular file of at most `max` bytes as UTF-8 (with `strict`, see
/// [`FileSource::strict_permissions`](super::FileSource::strict_permissions)).
pub(crate) fn read_text(path: &Path, max: u64, strict: bool) -> Result<String, ReadFailure> {
    let bytes = read_file(path, max, strict)?;
    String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        let bytes = err.as_bytes();
        let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        ReadFailure::Other(
            SourceErrorKind::NotText,
            format!("not valid UTF-8 (line {line}, byte offset {offset})"),
        )
    })
}

/// Reads a regular file of at most `max` bytes.
pub(crate) fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>, ReadFailure> {
    read_file(path, max, false)
}

fn read_file(path: &Path, max: u64, strict: bool) -> Result<Vec<u8>, ReadFailure> {
    // Check the kind first: opening a FIFO would block, reading a device would never end.
    let meta = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadFailure::Missing,
        _ => io_failure(&err),
    })?;
    check_kind_and_size(&meta, max)?;
    let (file, meta) = open_checked(path, max)?;
    if strict {
        check_permissions(path, &meta)?;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between stat and read: never read more than the limit.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| io_failure(&err))?;
    if bytes.len() as u64 > max {
        return Err(ReadFailure::Other(
            SourceErrorKind::TooLarge,
            format!("is above the limit of {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// Opens `path` and checks what was opened. The path may have been pointed elsewhere since it was
/// last checked (a FIFO put in place would make a plain open wait for a writer forever): open
/// without blocking, then check the open file itself.
fn open_checked(path: &Path, max: u64) -> Result<(std::fs::File, std::fs::Metadata), ReadFailure> {
    let file = open_nonblocking(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadFailure::Missing,
        _ => io_failure(&err),
    })?;
    let meta = file.metadata().map_err(|err| io_failure(&err))?;
    check_kind_and_size(&meta, max)?;
    Ok((file, meta))
}

fn check_kind_and_size(meta: &std::fs::Metadata, max: u64) -> Result<(), ReadFailure> {
    if meta.is_dir() {
        return Err(ReadFailure::Other(
            SourceErrorKind::NotAFile,
            "is a directory, expected a file".to_string(),
        ));
    }
    if !meta.is_file() {
        return Err(ReadFailure::Other(
            SourceErrorKind::NotAFile,
            "is not a regular file (a FIFO, socket or device?)".to_string(),
        ));
    }
    if meta.len() > max {
        return Err(ReadFailure::Other(
            SourceErrorKind::TooLarge,
            format!("is {} bytes, above the limit of {max} bytes", meta.len()),
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// [`FileSource::strict_permissions`](super::FileSource::strict_permissions): the opened file and the directory holding it.
#[cfg(unix)]
fn check_permissions(path: &Path, file: &std::fs::Metadata) -> Result<(), ReadFailure> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let check = |what: &str, meta: &std::fs::Metadata, sticky_ok: bool| {
        let mode = meta.mode() & 0o7777;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(ReadFailure::Other(
                SourceErrorKind::Denied,
                format!(
                    "refused: {what}is owned by uid {}, neither root nor this process's user \
                     (uid {me}); strict permissions are on",
                    meta.uid()
                ),
            ));
        }
        let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "group",
            (false, true) => "others",
            (false, false) => return Ok(()),
        };
        if sticky_ok && mode & 0o1000 != 0 {
            return Ok(()); // others may add files but not replace ours
        }
        Err(ReadFailure::Other(
            SourceErrorKind::Denied,
            format!(
                "refused: {what}writable by {writers} (mode {mode:04o}); strict permissions are \
                 on: `chmod go-w` it"
            ),
        ))
    };
    check("", file, false)?;
    // Whoever may write the directory may replace the file. Resolve symlinks first: the
    // directory that matters is the one holding the file itself.
    let real = std::fs::canonicalize(path).map_err(|err| io_failure(&err))?;
    if let Some(dir) = real.parent() {
        let meta = std::fs::metadata(dir).map_err(|err| io_failure(&err))?;
        check(&format!("its directory {} is ", dir.display()), &meta, true)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &std::fs::Metadata) -> Result<(), ReadFailure> {
    Ok(())
}

/// An I/O error as a failure of its kind, with a message for people.
fn io_failure(err: &std::io::Error) -> ReadFailure {
    /// Errors that pass: EMFILE (the process is out of file descriptors), ENFILE (the system
    /// is), EAGAIN; the numbers are Linux's.
    const PASSING: [i32; 3] = [24, 23, 11];
    const ELOOP: i32 = 40;
    let os = err.raw_os_error();
    if err.kind() == std::io::ErrorKind::PermissionDenied {
        ReadFailure::Other(SourceErrorKind::Denied, "permission denied".to_string())
    } else if os.is_some_and(|code| PASSING.contains(&code)) {
        ReadFailure::Other(SourceErrorKind::Unavailable, err.to_string())
    } else if os == Some(ELOOP) {
        let problem = "too many levels of symbolic links (a symlink loop?)";
        ReadFailure::Other(SourceErrorKind::Unreadable, problem.to_string())
    } else {
        ReadFailure::Other(SourceErrorKind::Unreadable, err.to_string())
    }
}

/// Reads a referenced file's bytes for hashing; `None` when it cannot be read.
pub(crate) fn hash_file(path: &Path, max: u64) -> Option<String> {
    read_bytes(path, max).ok().map(|b| sha256_hex(&b))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn opening_a_fifo_that_replaced_the_file_never_blocks() {
        // What a reload meets when a FIFO is renamed over the file between its check of the path
        // and the open. A plain open would wait for a writer forever: run it on a thread.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("app.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let opener = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_checked(&opener, crate::DEFAULT_MAX_BYTES).map(|_| ()));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(Err(ReadFailure::Other(kind, problem))) => {
                assert_eq!(kind, SourceErrorKind::NotAFile);
                assert_eq!(problem, "is not a regular file (a FIFO, socket or device?)")
            }
            Ok(_) => panic!("a FIFO was accepted"),
            Err(_) => {
                // Unblock the opener before failing.
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
                panic!("opening a FIFO blocked");
            }
        }
    }

    #[test]
    fn passing_io_errors_are_told_from_lasting_ones() {
        let kind = |code| match io_failure(&std::io::Error::from_raw_os_error(code)) {
            ReadFailure::Other(kind, _) => kind,
            ReadFailure::Missing => panic!("os error {code} read as missing"),
        };
        for passing in [24, 23, 11] {
            assert_eq!(
                kind(passing),
                SourceErrorKind::Unavailable,
                "os error {passing}"
            );
        }
        assert_eq!(kind(13), SourceErrorKind::Denied);
        for lasting in [2, 21, 40] {
            assert_eq!(
                kind(lasting),
                SourceErrorKind::Unreadable,
                "os error {lasting}"
            );
        }
    }
}
