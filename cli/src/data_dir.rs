//! The embedded mode's data directory: private to the user that runs `triggers`, since it holds
//! signing secrets, API key hashes and (unless configured otherwise) the admin token.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

/// The name of the generated admin token's file inside the data directory.
const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Makes `dir` (created if missing) and everything in it reachable by its owner only, and makes
/// every file and directory this process creates from now on private too.
///
/// The directory becomes `0700` and what it already holds `0600` (files) or `0700`
/// (directories), so that a data directory written by an earlier, laxer version is closed as
/// well. The storage engine keeps creating files (journals, segments) for as long as it runs, so
/// the process umask becomes `077`: no file it creates later is readable by anyone else. The
/// umask is process-wide, which suits the embedded mode: everything the process writes is its data.
pub fn make_private(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;

        use rustix::fs::Mode;

        rustix::process::umask(Mode::from_raw_mode(0o077));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
        restrict_tree(dir).with_context(|| format!("making the data directory {} private", dir.display()))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
    Ok(())
}

/// Takes the group and others bits off `path` and, for a directory, off everything below it.
/// Symbolic links are left alone (their target may be anywhere). A file that disappears during
/// the walk is skipped: the storage engine of a run that is just stopping may still be removing
/// obsolete files, and a file that is gone needs no protection.
#[cfg(unix)]
fn restrict_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let gone = |error: &std::io::Error| error.kind() == std::io::ErrorKind::NotFound;
    let metadata = match std::fs::symlink_metadata(path) {
        Err(error) if gone(&error) => return Ok(()),
        other => other?,
    };
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077)) {
            Err(error) if gone(&error) => return Ok(()),
            other => other?,
        }
    }
    if metadata.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Err(error) if gone(&error) => return Ok(()),
            other => other?,
        };
        for entry in entries {
            match entry {
                Err(error) if gone(&error) => {}
                entry => restrict_tree(&entry?.path())?,
            }
        }
    }
    Ok(())
}

/// Refuses an admin token file that group or others may read, rather than using it or silently
/// fixing it: whoever could read it may hold the token already, so the operator has to decide
/// (rotate the token, or make the file private) before the admin API trusts it. Called before
/// [`make_private`], which would otherwise hide the evidence.
pub fn refuse_shared_admin_token(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;

        let Ok(metadata) = std::fs::metadata(&path) else { return Ok(()) };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} holds the admin token but is open to other users (mode {:04o}); rotate the token or run \
                 `chmod 600 {}`, then start again",
                path.display(),
                mode & 0o7777,
                path.display()
            );
        }
    }
    Ok(())
}

/// The admin token of the embedded mode: read from `<data-dir>/admin-token`, or generated there
/// (readable by the owner only) on first start.
pub fn load_or_create_admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_owned();
        if !token.is_empty() {
            tracing::info!(path = %path.display(), "admin token read from file");
            return Ok(token);
        }
    }
    let token = format!("adm_{}", hex::encode(rand::random::<[u8; 32]>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{token}")?;
    eprintln!("admin token generated and written to {}", path.display());
    Ok(token)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn an_existing_data_directory_is_closed_to_others() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        std::fs::create_dir_all(dir.join("journals")).unwrap();
        std::fs::write(dir.join("journals/0"), b"x").unwrap();
        std::fs::write(dir.join("version"), b"x").unwrap();
        for (path, mode) in [(&dir, 0o755), (&dir.join("journals"), 0o755)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        for file in ["journals/0", "version"] {
            std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        make_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("journals")), 0o700);
        assert_eq!(mode(&dir.join("journals/0")), 0o600);
        assert_eq!(mode(&dir.join("version")), 0o600);
    }

    #[test]
    fn a_shared_admin_token_file_is_refused_with_one_line_naming_it() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join(ADMIN_TOKEN_FILE);
        std::fs::write(&path, "adm_secret\n").unwrap();
        for shared in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(shared)).unwrap();
            let error = format!("{:#}", refuse_shared_admin_token(temp.path()).unwrap_err());
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains(&format!("{shared:04o}")), "{error}");
            assert!(!error.contains('\n'), "{error}");
            assert!(!error.contains("adm_secret"), "the error shows the token: {error}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        refuse_shared_admin_token(temp.path()).unwrap();
        assert_eq!(load_or_create_admin_token(temp.path()).unwrap(), "adm_secret");
        // No file yet is no refusal: one is generated, for the owner only.
        let fresh = tempfile::tempdir().unwrap();
        refuse_shared_admin_token(fresh.path()).unwrap();
        let token = load_or_create_admin_token(fresh.path()).unwrap();
        assert!(token.starts_with("adm_"));
        assert_eq!(mode(&fresh.path().join(ADMIN_TOKEN_FILE)), 0o600);
    }
}
