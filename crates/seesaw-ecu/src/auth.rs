//! Identities of the control server's callers and the roles that limit
//! what they may do.
//!
//! The engine trusts the ECU, which runs as root, with every call, so the
//! ECU authorizes each request itself before it calls the engine. A caller
//! proves who it is with a bearer token listed in the token file or with a
//! client certificate that the CA file verifies. The roles are those of
//! the engine's access groups:
//!
//! - reader: the read-only JSON API;
//! - operator: also overrides of the vservers whose `access_grant` names
//!   the caller;
//! - admin: everything, including failover, reloads and every override.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// Tokens shorter than this are rejected, because they can be guessed.
pub const MIN_TOKEN_LENGTH: usize = 16;

/// A caller's permission level, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Authenticated, but granted nothing.
    None,
    Reader,
    Operator,
    Admin,
}

impl Role {
    /// Parses a role name of the token file or of a certificate's
    /// organizational unit; `ops` is another name for `operator`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "operator" | "ops" => Some(Role::Operator),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The kind of credential a caller authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Token,
    Certificate,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Token => "token",
            Method::Certificate => "certificate",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name that access grants name: the token file's name
    /// column, or the certificate's common name.
    pub name: String,
    pub role: Role,
    pub method: Method,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ({}, by {})",
            self.name,
            self.role.name(),
            self.method.name()
        )
    }
}

/// The reason a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send a bearer token or a client certificate")]
    Missing,
    #[error("invalid Authorization header: use \"Bearer <token>\"")]
    MalformedHeader,
    #[error("invalid token")]
    InvalidToken,
}

impl AuthError {
    /// Returns the reason as a metric label value.
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::MalformedHeader => "malformed_header",
            AuthError::InvalidToken => "invalid_token",
        }
    }
}

/// Identifies the caller of a request from its `Authorization` header, or
/// else from the client certificate of its TLS connection. A header that
/// is present but wrong fails even when a certificate was presented, so
/// that a typing error never falls back to another identity silently.
pub fn authenticate(
    authorization: Option<&[u8]>,
    certificate: Option<&Identity>,
    tokens: &TokenFile,
) -> Result<Identity, AuthError> {
    if let Some(header) = authorization {
        let header = std::str::from_utf8(header).map_err(|_| AuthError::MalformedHeader)?;
        let (scheme, token) = header
            .trim()
            .split_once(' ')
            .ok_or(AuthError::MalformedHeader)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::MalformedHeader);
        }
        return tokens.identify(token.trim()).ok_or(AuthError::InvalidToken);
    }
    certificate.cloned().ok_or(AuthError::Missing)
}

/// One line of the token file.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub token: String,
    pub role: Role,
    pub name: String,
}

impl fmt::Debug for TokenEntry {
    // Leaves the token out, so that it never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("role", &self.role)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Parses the token file's text: one `<token> <role> <name>` per line,
/// where the name is the rest of the line. Blank lines and lines starting
/// with `#` are skipped. Returns the valid entries and a message for each
/// invalid line, which is left out.
pub fn parse_tokens(text: &str) -> (Vec<TokenEntry>, Vec<String>) {
    let mut entries: Vec<TokenEntry> = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }

        let mut fields = line.splitn(3, char::is_whitespace);
        let (Some(token), Some(role), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            problems.push(format!("line {number}: expected \"<token> <role> <name>\""));
            continue;
        };
        let name = name.trim();
        let Some(role) = Role::parse(role.trim()) else {
            problems.push(format!(
                "line {number}: unknown role {role:?}: use admin, operator or reader"
            ));
            continue;
        };
        if token.len() < MIN_TOKEN_LENGTH {
            problems.push(format!(
                "line {number}: the token of {name:?} is shorter than {MIN_TOKEN_LENGTH} characters: use a random one"
            ));
            continue;
        }
        if entries.iter().any(|entry| entry.token == token) {
            problems.push(format!(
                "line {number}: the token of {name:?} is already listed for another name"
            ));
            continue;
        }
        entries.push(TokenEntry {
            token: token.to_string(),
            role,
            name: name.to_string(),
        });
    }
    (entries, problems)
}

/// Compares two byte strings in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The file metadata that identifies one version of the token file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    length: u64,
    inode: u64,
}

#[derive(Debug, Default)]
struct Loaded {
    /// `None` when the file could not be read.
    stamp: Option<FileStamp>,
    entries: Vec<TokenEntry>,
}

/// The token file, read again whenever it changes, so that adding or
/// revoking a token needs no restart.
#[derive(Debug)]
pub struct TokenFile {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

impl TokenFile {
    /// Reads the token file at `path`; `None` disables token
    /// authentication.
    pub fn new(path: Option<PathBuf>) -> TokenFile {
        let file = TokenFile {
            path,
            loaded: Mutex::new(Loaded::default()),
        };
        if let Some(path) = &file.path {
            let mut loaded = file.loaded.lock().expect("token file lock poisoned");
            reload(path, &mut loaded, true);
        }
        file
    }

    /// Returns the identity whose token is `token`, after reading the file
    /// again if it changed.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        let path = self.path.as_ref()?;
        let mut loaded = self.loaded.lock().expect("token file lock poisoned");
        reload(path, &mut loaded, false);

        // Every entry is compared, so the time taken does not tell which
        // entry matched.
        let mut found = None;
        for entry in &loaded.entries {
            if same_secret(entry.token.as_bytes(), token.as_bytes()) && found.is_none() {
                found = Some(entry);
            }
        }
        found.map(|entry| Identity {
            name: entry.name.clone(),
            role: entry.role,
            method: Method::Token,
        })
    }
}

fn stamp(metadata: &fs::Metadata) -> FileStamp {
    FileStamp {
        modified: metadata.modified().ok(),
        length: metadata.len(),
        inode: metadata.ino(),
    }
}

/// Reads the file again when it changed since the last read, or when
/// `force` is set. An unreadable file leaves no valid token.
fn reload(path: &Path, loaded: &mut Loaded, force: bool) {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            if force || loaded.stamp.is_some() {
                tracing::warn!(
                    "failed to read the token file {}: {error}; token authentication rejects every token until it can be read",
                    path.display()
                );
            }
            *loaded = Loaded::default();
            return;
        }
    };
    let current = stamp(&metadata);
    if !force && loaded.stamp == Some(current) {
        return;
    }

    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(
                "failed to read the token file {}: {error}; token authentication rejects every token until it can be read",
                path.display()
            );
            *loaded = Loaded::default();
            return;
        }
    };
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "the token file {} can be read by other users (mode {mode:04o}): run chmod 600 on it",
            path.display()
        );
    }
    let (entries, problems) = parse_tokens(&text);
    for problem in &problems {
        tracing::warn!("token file {}: {problem}; line ignored", path.display());
    }
    tracing::info!(
        "token file {}: {} valid tokens",
        path.display(),
        entries.len()
    );
    *loaded = Loaded {
        stamp: Some(current),
        entries,
    };
}

/// Reads the caller's identity from the subject of its client
/// certificate: the common name is the user name, and the highest role
/// that an organizational unit names is the role.
pub fn certificate_identity(der: &[u8]) -> Result<Identity, String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|error| format!("invalid client certificate: {error}"))?;
    let subject = certificate.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|attribute| attribute.as_str().ok())
        .ok_or_else(|| format!("client certificate {subject} has no common name"))?;
    let role = subject
        .iter_organizational_unit()
        .filter_map(|attribute| attribute.as_str().ok())
        .filter_map(Role::parse)
        .max()
        .unwrap_or(Role::None);
    Ok(Identity {
        name: name.to_string(),
        role,
        method: Method::Certificate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN_TOKEN: &str = "0123456789abcdef-admin";
    const READER_TOKEN: &str = "0123456789abcdef-reader";

    fn token_file(text: &str) -> (tempfile::TempDir, TokenFile) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("tokens");
        fs::write(&path, text).unwrap();
        let file = TokenFile::new(Some(path));
        (directory, file)
    }

    #[test]
    fn parse_skips_invalid_lines() {
        let text = format!(
            "# comment\n\n{ADMIN_TOKEN} admin Alice Smith\nshort reader bob\n{READER_TOKEN} root carol\n{READER_TOKEN}\n{READER_TOKEN} ops dave\n{READER_TOKEN} reader eve\n"
        );

        let (entries, problems) = parse_tokens(&text);

        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "Alice Smith");
        assert_eq!(entries[0].role, Role::Admin);
        assert_eq!(entries[1].name, "dave");
        assert_eq!(entries[1].role, Role::Operator);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 4:"), "{}", problems[0]);
        assert!(
            problems[1].contains("unknown role \"root\""),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].starts_with("line 6: expected"),
            "{}",
            problems[2]
        );
        assert!(problems[3].contains("already listed"), "{}", problems[3]);
    }

    #[test]
    fn entry_debug_hides_token() {
        let (entries, _) = parse_tokens(&format!("{ADMIN_TOKEN} admin alice"));

        let printed = format!("{:?}", entries[0]);

        assert!(!printed.contains(ADMIN_TOKEN), "{printed}");
    }

    #[test]
    fn bearer_token_identifies_caller() {
        let (_directory, tokens) = token_file(&format!("{ADMIN_TOKEN} admin alice\n"));
        let header = format!("Bearer {ADMIN_TOKEN}");

        let identity = authenticate(Some(header.as_bytes()), None, &tokens).unwrap();

        assert_eq!(identity.name, "alice");
        assert_eq!(identity.role, Role::Admin);
        assert_eq!(identity.method, Method::Token);
    }

    #[test]
    fn wrong_header_never_falls_back_to_certificate() {
        let (_directory, tokens) = token_file(&format!("{ADMIN_TOKEN} admin alice\n"));
        let certificate = Identity {
            name: "bob".into(),
            role: Role::Admin,
            method: Method::Certificate,
        };

        let wrong = authenticate(Some(b"Bearer nope"), Some(&certificate), &tokens);
        let basic = authenticate(Some(b"Basic YWxpY2U6eA=="), None, &tokens);
        let none = authenticate(None, None, &tokens);
        let by_certificate = authenticate(None, Some(&certificate), &tokens);

        assert_eq!(wrong, Err(AuthError::InvalidToken));
        assert_eq!(basic, Err(AuthError::MalformedHeader));
        assert_eq!(none, Err(AuthError::Missing));
        assert_eq!(by_certificate, Ok(certificate));
    }

    #[test]
    fn token_file_change_is_read_again() {
        let (directory, tokens) = token_file(&format!("{ADMIN_TOKEN} admin alice\n"));
        let path = directory.path().join("tokens");

        let before = tokens.identify(ADMIN_TOKEN);
        // A new file, as editors and `mv` write one, has a new inode.
        let replacement = directory.path().join("tokens.new");
        fs::write(&replacement, format!("{READER_TOKEN} reader bob\n")).unwrap();
        fs::rename(&replacement, &path).unwrap();
        let revoked = tokens.identify(ADMIN_TOKEN);
        let added = tokens.identify(READER_TOKEN);
        fs::remove_file(&path).unwrap();
        let removed = tokens.identify(READER_TOKEN);

        assert_eq!(before.map(|identity| identity.role), Some(Role::Admin));
        assert_eq!(revoked, None);
        assert_eq!(added.map(|identity| identity.name), Some("bob".into()));
        assert_eq!(removed, None);
    }

    #[test]
    fn no_token_file_rejects_tokens() {
        let tokens = TokenFile::new(None);

        assert_eq!(tokens.identify(ADMIN_TOKEN), None);
    }

    /// Returns a self-signed certificate whose subject has the common name
    /// `name` and the organizational unit `unit`.
    fn certificate(name: &str, unit: &str) -> rcgen::Certificate {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let subject = &mut params.distinguished_name;
        subject.push(rcgen::DnType::CommonName, name);
        subject.push(rcgen::DnType::OrganizationalUnitName, unit);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap()
    }

    #[test]
    fn certificate_subject_gives_name_and_role() {
        let operator = certificate_identity(certificate("alice", "ops").der()).unwrap();
        let other = certificate_identity(certificate("bob", "load balancing").der()).unwrap();

        assert_eq!(operator.name, "alice");
        assert_eq!(operator.role, Role::Operator);
        assert_eq!(operator.method, Method::Certificate);
        assert_eq!(other.name, "bob");
        assert_eq!(other.role, Role::None);
    }
}
