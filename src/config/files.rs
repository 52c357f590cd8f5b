//! Reading the files a configuration names (the properties file, `${file:}`/`${dir:}` secrets,
//! certificates) without hanging or exhausting memory: only regular files are read, and only up
//! to a size limit. A FIFO would block the reload until someone writes to it, `/dev/zero` would
//! never end.

use std::io::Read;
use std::path::Path;

/// The largest configuration file read (properties, secrets, certificates).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The content of `path`, a regular file (symlinks followed) of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory is never read)",
        ));
    }
    if metadata.len() > limit {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than {} MiB", limit / (1024 * 1024)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        for path in [Path::new("/dev/zero"), dir.path()] {
            let error = read_regular(path, MAX_FILE_BYTES).unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let error = read_regular(&fifo, MAX_FILE_BYTES).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; 2048]).unwrap();
        assert!(read_regular(&file, 1024).is_err());
        assert_eq!(read_regular(&file, 4096).unwrap().len(), 2048);
    }
}
