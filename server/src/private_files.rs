//! Patient data is never readable by other users of the machine: the data and backup directories are
//! 0700 and every database, journal, lock and backup file 0600, whatever the umask. A directory or file
//! found readable by others is tightened at start, and the log says so.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Group and other permission bits.
const OTHERS: u32 = 0o077;

/// Creates `dir` (and missing parents) so that it is 0700, or tightens renkei's own directory (the data
/// or backup directory) to 0700 when it lets others in. A directory this process does not own, or a
/// shared one with the sticky bit (`/tmp`), is never changed: the log says it is open instead.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    match std::fs::metadata(dir) {
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt;
            let mode = meta.permissions().mode();
            let ours = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == meta.uid());
            if mode & OTHERS != 0 && (!ours || mode & 0o1000 != 0) {
                tracing::warn!(path = %dir.display(), mode = format!("{:o}", mode & 0o7777),
                    "this directory holding patient data is open to other users; give renkei a directory of its own");
                return Ok(());
            }
            tighten(dir, mode, 0o700)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(dir),
        Err(e) => Err(e),
    }
}

/// Creates `dir` as 0700 when it does not exist; leaves an existing one as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // `recursive` applies the mode to every directory it makes; the last one is ours.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes sure `path` exists and is 0600: creates it empty when missing (SQLite takes an empty file as an
/// empty database, and `VACUUM INTO` writes into an empty one), tightens it when others may read it.
pub fn private_file(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) => tighten(path, meta.permissions().mode(), 0o600),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
        }
        Err(e) => Err(e),
    }
}

/// Tightens an existing file to 0600 if it is there at all (a database's `-wal` and `-shm` side files).
pub fn tighten_if_present(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) => tighten(path, meta.permissions().mode(), 0o600),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn tighten(path: &Path, mode: u32, wanted: u32) -> io::Result<()> {
    if mode & OTHERS == 0 {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), was = format!("{:o}", mode & 0o777), now = format!("{wanted:o}"),
        "patient data was readable by other users; permissions tightened");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
}

/// Writes a new file readable by this user only (fails if it exists: a key is never overwritten).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut file, contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_made_private_or_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("db");
        private_file(&file).unwrap();
        assert_eq!((mode(&file), std::fs::metadata(&file).unwrap().len()), (0o600, 0));

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&dir).unwrap();
        private_file(&file).unwrap();
        assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
        // A file that is already private is left as it is.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o400);
        tighten_if_present(&dir.join("absent")).unwrap();

        // A shared directory (sticky, like /tmp) is never changed.
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&shared).unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777, 0o1777);
    }
}
