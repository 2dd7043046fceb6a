//! Development only: secrets missing from the configuration are generated once into
//! `<data dir>/secrets/` (directory 0700, files 0600) and reused on every later start, so a
//! first run needs no setup and tokens survive a restart. Never used outside development:
//! `load` only calls it for that profile.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::DevSecrets;
use crate::crypto::{self, Secret};

pub struct Generated {
    pub jwt_secret: Option<Secret<String>>,
    pub master_keys: Option<Secret<String>>,
    pub warnings: Vec<String>,
}

const JWT_FILE: &str = "jwt_secret";
const MASTER_FILE: &str = "master_keys";

pub fn fill(
    data_dir: &Path,
    mode: DevSecrets,
    need_jwt: bool,
    need_master: bool,
) -> Result<Generated, String> {
    let dir = data_dir.join("secrets");
    let mut generated = Generated { jwt_secret: None, master_keys: None, warnings: vec![] };
    if need_jwt {
        generated.jwt_secret = obtain(&dir, JWT_FILE, mode, &mut generated.warnings, || {
            let bytes = Zeroizing::new(crypto::random_bytes::<32>());
            URL_SAFE_NO_PAD.encode(bytes.as_slice())
        })?;
    }
    if need_master {
        generated.master_keys = obtain(&dir, MASTER_FILE, mode, &mut generated.warnings, || {
            let bytes = Zeroizing::new(crypto::random_bytes::<32>());
            format!("dev1:{}", BASE64.encode(bytes.as_slice()))
        })?;
    }
    Ok(generated)
}

fn obtain(
    dir: &Path,
    file: &str,
    mode: DevSecrets,
    warnings: &mut Vec<String>,
    make: impl FnOnce() -> String,
) -> Result<Option<Secret<String>>, String> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(text) => {
            warnings.push(format!(
                "development: using the generated secret in {} — never use it in production",
                path.display()
            ));
            return Ok(Some(Secret::new(text.trim().to_owned())));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(format!("{}: cannot be read ({})", path.display(), err.kind())),
    }
    if mode == DevSecrets::Inspect {
        warnings
            .push(format!("development: `serve` will generate a secret into {}", path.display()));
        return Ok(None);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| format!("{}: cannot be created ({})", dir.display(), err.kind()))?;
    let value = make();
    // create_new: two processes starting at once must not overwrite each other's key.
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()).and_then(|()| f.sync_all()));
    match written {
        Ok(()) => {
            warnings.push(format!(
                "development: GENERATED a new secret into {} (mode 0600). Fine for a laptop; \
                 set real secrets before anyone else depends on this instance",
                path.display()
            ));
            Ok(Some(Secret::new(value)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(&path)
                .map_err(|err| format!("{}: cannot be read ({})", path.display(), err.kind()))?;
            Ok(Some(Secret::new(text.trim().to_owned())))
        }
        Err(err) => Err(format!("{}: cannot be written ({})", path.display(), err.kind())),
    }
}
